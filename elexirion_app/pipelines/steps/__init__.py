"""Step implementations, one module per family; ``HANDLERS`` maps a step type to its coroutine.

A handler is ``async (ctx, rendered_step, scope, qualified_name) -> result`` and raises an
``ElexirionError`` (usually ``StepError``) when the step fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from elexirion_app.core.models import resolve_model
from elexirion_app.pipelines.steps.data_transform import run_data_transform
from elexirion_app.pipelines.steps.echo import run_test_echo
from elexirion_app.pipelines.steps.enhanced import (
    run_claude_batch,
    run_claude_extract,
    run_claude_robust,
    run_claude_session,
    run_claude_smart,
)
from elexirion_app.pipelines.steps.file_ops import run_file_ops
from elexirion_app.pipelines.steps.llm import (
    run_claude,
    run_gemini,
    run_gemini_instructor,
    run_parallel_claude,
)
from elexirion_app.pipelines.steps.loops import run_for_loop, run_while_loop
from elexirion_app.pipelines.steps.nested import run_pipeline_step
from elexirion_app.pipelines.steps.set_variable import run_set_variable

Handler = Callable[..., Awaitable[Any]]

HANDLERS: dict[str, Handler] = {
    "set_variable": run_set_variable,
    "claude": run_claude,
    "gemini": run_gemini,
    "parallel_claude": run_parallel_claude,
    "gemini_instructor": run_gemini_instructor,
    "claude_smart": run_claude_smart,
    "claude_session": run_claude_session,
    "claude_extract": run_claude_extract,
    "claude_batch": run_claude_batch,
    "claude_robust": run_claude_robust,
    "for_loop": run_for_loop,
    "while_loop": run_while_loop,
    "data_transform": run_data_transform,
    "file_ops": run_file_ops,
    "pipeline": run_pipeline_step,
}
STEP_TYPES = frozenset(HANDLERS)
HANDLERS["test_echo"] = run_test_echo  # pipeline_ex's test-only type (a validation warning)
_CLAUDE = frozenset(
    {"claude", "claude_smart", "claude_session", "claude_extract", "claude_batch", "claude_robust"}
)


def model_of(step: Mapping[str, Any]) -> str | None:
    """The model id an LLM step will call (for progress display), else None."""
    kind = step.get("type")
    if kind in _CLAUDE:
        options = step.get("claude_options") or {}
        return resolve_model(
            options.get("model") if isinstance(options, Mapping) else None
        ).model_id
    if kind in ("gemini", "gemini_instructor"):
        return resolve_model(step.get("model"), "gemini").model_id
    if kind == "parallel_claude":
        return resolve_model(None).model_id
    return None
