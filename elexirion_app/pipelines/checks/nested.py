"""Nested pipelines: inline ``pipeline:`` maps and ``pipeline_file`` includes.

CONTRACT:
- ``check_pipeline(ctx, step, path)``: exactly one of ``pipeline_file`` / ``pipeline``; an
  inline pipeline is validated in a fresh context (``ctx.walk.workflow``); a file is loaded and
  validated with its own file name (``ctx.walk.document``), refusing cycles (A → B → A) and
  nesting deeper than ``MAX_NESTED_DEPTH``; ``outputs`` are step names or ``{path, as}``.
- ``resolved_file(name)`` is the form of a file in ``ctx.chain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import PipelineValidationError
from elexirion_app.pipelines.checks.context import Ctx, templated
from elexirion_app.pipelines.checks.paths import check_relative
from elexirion_app.pipelines.checks.references import check_template_text
from elexirion_app.pipelines.checks.tables import MAX_NESTED_DEPTH
from elexirion_app.pipelines.loader import load_file


def is_pipeline_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def resolved_file(name: str) -> str:
    try:
        return str(Path(name).resolve())
    except OSError:  # pragma: no cover
        return name


def check_pipeline(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    has_file, has_inline = "pipeline_file" in step, "pipeline" in step
    if has_file == has_inline:
        ctx.add(path, "a pipeline step needs exactly one of 'pipeline_file' or 'pipeline'")
        return
    if has_inline:
        inline = step["pipeline"]
        ipath = (*path, "pipeline")
        if not isinstance(inline, dict):
            ctx.add(ipath, "an inline pipeline must be a map with name and steps")
            return
        if isinstance(inline.get("workflow"), dict):
            inline, ipath = inline["workflow"], (*ipath, "workflow")
        ctx.walk.workflow(ctx.fresh(), inline, ipath)
    else:
        _check_pipeline_file(ctx, step["pipeline_file"], (*path, "pipeline_file"))
    outputs = step.get("outputs")
    if outputs is not None and not templated(outputs) and not isinstance(outputs, list):
        ctx.add((*path, "outputs"), "outputs must be a list of step names or {path, as}")
    elif isinstance(outputs, list):
        for k, item in enumerate(outputs):
            if isinstance(item, dict) and ("path" not in item or "as" not in item):
                ctx.add((*path, "outputs", k), "an output map needs 'path' and 'as'")
            elif not isinstance(item, (str, dict)):
                ctx.add((*path, "outputs", k), "an output is a step name or {path, as}")


def _check_pipeline_file(ctx: Ctx, raw: Any, path: tuple[Any, ...]) -> None:
    if not isinstance(raw, str) or not raw.strip():
        ctx.add(path, "pipeline_file must be a file path")
        return
    if "{{" in raw:
        check_template_text(ctx, raw, path)
        return
    before = len(ctx.problems)
    check_relative(ctx, raw, path)
    if len(ctx.problems) > before:
        return
    resolved = resolved_file(str(ctx.doc.base_dir / raw))
    if resolved in ctx.chain:
        cycle = " → ".join(Path(p).name for p in (*ctx.chain, resolved))
        ctx.add(path, f"nested pipelines form a cycle: {cycle}", "remove one of the includes")
        return
    if len(ctx.chain) >= MAX_NESTED_DEPTH:
        ctx.add(path, f"pipelines nested deeper than {MAX_NESTED_DEPTH} levels")
        return
    if not Path(resolved).is_file():
        ctx.add(path, f"pipeline file {raw!r} not found (relative to {ctx.doc.base_dir})")
        return
    try:
        nested = load_file(Path(resolved))
    except PipelineValidationError as exc:
        ctx.add(path, f"pipeline file {raw!r} cannot be loaded")
        ctx.problems.extend(exc.problems)
        return
    ctx.problems.extend(ctx.walk.document(nested, ctx.strict, (*ctx.chain, resolved)))
