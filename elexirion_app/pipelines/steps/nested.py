"""``pipeline``: run another pipeline (``pipeline_file`` or inline ``pipeline``) as a step.

``inputs`` are rendered in the parent scope (a whole ``{{…}}`` keeps its type); ``outputs``
pick results (``"step"`` or ``{path: "step.a.b", as: "x"}``); ``config``: ``inherit_context``,
``max_depth`` (10), ``max_total_steps``, ``timeout_seconds``. Cycles of pipeline files are
refused before they run.

Every step of the child pipeline is a resumable unit (``nested>inner``, see the executor): a
resume re-enters the nested pipeline and reuses the steps that finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elexirion_app.core.errors import StepError, WorkspaceError
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.pipelines.defaults import apply_defaults
from elexirion_app.pipelines.loader import PipelineDocument
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.steps.util import MISSING, get_path

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

DEFAULT_MAX_DEPTH = 10


def _find_file(ctx: RunContext, raw: str, name: str) -> Path:
    last: WorkspaceError | None = None
    for root in (ctx.base_dir, ctx.workspace):
        try:
            path = resolve_in_workspace(root, raw)
        except WorkspaceError as exc:
            last = exc
            continue
        if path.is_file():
            return path
    if last is not None:
        raise last
    raise StepError(name, f"pipeline_file {raw!r} not found")


def _load(ctx: RunContext, step: Mapping[str, Any], name: str) -> tuple[PipelineDocument, str]:
    from elexirion_app.pipelines import loader

    if step.get("pipeline_file"):
        path = _find_file(ctx, str(step["pipeline_file"]), name)
        key = str(path.resolve())
        if key in ctx.pipeline_stack:
            chain = " → ".join(Path(p).name for p in (*ctx.pipeline_stack, key))
            raise StepError(name, f"circular pipeline reference: {chain}")
        return loader.load_file(path), key
    inline = step.get("pipeline")
    if not isinstance(inline, Mapping):
        raise StepError(name, "a pipeline step needs 'pipeline_file' or an inline 'pipeline'")
    workflow = inline.get("workflow")
    if not isinstance(workflow, Mapping):
        workflow = inline
    doc = PipelineDocument(
        workflow=dict(workflow), file=f"<inline pipeline of {name}>", base_dir=ctx.base_dir
    )
    return doc, f"inline:{name}:{id(inline)}"


def _outputs(spec: Any, steps: Mapping[str, Any], name: str) -> dict[str, Any]:
    if not spec:
        return dict(steps)
    out: dict[str, Any] = {}
    for item in spec if isinstance(spec, list) else [spec]:
        if isinstance(item, Mapping):
            path = str(item.get("path", ""))
            alias = str(item.get("as") or path.split(".")[-1])
        else:
            path = alias = str(item)
        value = get_path(steps, path)
        if value is MISSING and "." in path:  # pipeline_ex results wrapped in ``result``
            head, rest = path.split(".", 1)
            value = get_path(steps, f"{head}.result.{rest}")
        if value is MISSING:
            raise StepError(name, f"output {path!r} not found in the nested pipeline's results")
        out[alias] = value
    return out


async def run_pipeline_step(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    from elexirion_app.pipelines.run_setup import builtins_for
    from elexirion_app.pipelines.validate import ensure_valid

    config = step.get("config") or {}
    max_depth = int(config.get("max_depth") or DEFAULT_MAX_DEPTH)
    if ctx.depth + 1 > max_depth:
        raise StepError(name, f"nesting depth {ctx.depth + 1} exceeds max_depth {max_depth}")
    doc, key = _load(ctx, step, name)
    ensure_valid(doc)
    workflow = apply_defaults(doc.workflow)
    limit = ctx.max_total_steps
    if config.get("max_total_steps"):
        limit = min(limit, ctx.step_count[0] + int(config["max_total_steps"]))
    child_ctx = ctx.child(
        workflow=workflow,
        base_dir=doc.base_dir,
        depth=ctx.depth + 1,
        pipeline_stack=(*ctx.pipeline_stack, key),
        max_total_steps=limit,
    )
    inputs = dict(step.get("inputs") or {})
    own_globals = dict(workflow.get("global_vars") or {})
    if config.get("inherit_context"):
        child_scope = Scope(
            inputs={**scope.inputs, **inputs},
            global_vars={**scope.global_vars, **own_globals},
            steps=dict(scope.steps),
            variables=dict(scope.variables),
            builtins=builtins_for(ctx.run_id, workflow),
        )
    else:
        child_scope = Scope(
            inputs=inputs,
            global_vars=own_globals,
            builtins=builtins_for(ctx.run_id, workflow),
        )
    steps = list(workflow.get("steps") or [])
    run = child_ctx.run_steps(steps, child_scope, prefix=f"{name}>")
    timeout = config.get("timeout_seconds")
    try:
        results = await (asyncio.wait_for(run, float(timeout)) if timeout else run)
    except TimeoutError as exc:
        raise StepError(name, f"nested pipeline timed out after {timeout}s") from exc
    outputs = _outputs(step.get("outputs"), results, name)
    outputs.setdefault("success", True)
    return outputs
