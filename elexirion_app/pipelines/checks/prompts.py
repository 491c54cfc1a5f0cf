"""Prompts: required where the step type needs one, and each prompt part's fields.

CONTRACT:
- ``check_prompt_required(ctx, step, kind, path)``: an LLM step without a prompt (or with an
  empty or mistyped one) is an error; ``claude_batch`` with ``tasks`` needs none.
- ``check_prompt(ctx, prompt, path)``: a list of parts (a plain string is a warning, an error
  when strict); each part's type, required and unknown fields, step references and file paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elexirion_app.pipelines.checks.context import Ctx, kind_of, nearest
from elexirion_app.pipelines.checks.paths import check_relative
from elexirion_app.pipelines.checks.references import check_step_ref
from elexirion_app.pipelines.checks.tables import (
    NO_PROMPT_TYPES,
    PROMPT_PART_FIELDS,
    TEST_STEP_TYPES,
)


def check_prompt_required(
    ctx: Ctx, step: Mapping[str, Any], kind: str, path: tuple[Any, ...]
) -> None:
    if kind in NO_PROMPT_TYPES or kind in TEST_STEP_TYPES:
        return
    if kind == "claude_batch" and step.get("tasks"):
        return
    prompt = step.get("prompt")
    if prompt is None:
        ctx.add(
            path, f"a {kind} step needs a 'prompt' list", "prompt: [{type: static, content: ...}]"
        )
    elif isinstance(prompt, list) and not prompt:
        ctx.add((*path, "prompt"), "the prompt is empty")
    elif not isinstance(prompt, (list, str)):
        ctx.add((*path, "prompt"), f"the prompt must be a list of parts, not {kind_of(prompt)}")


def check_prompt(ctx: Ctx, prompt: Any, path: tuple[Any, ...]) -> None:
    if isinstance(prompt, str):
        message = "the prompt is a plain string; pipeline_ex's validation refuses this"
        hint = "write prompt: [{type: static, content: ...}]"
        if ctx.strict:
            ctx.add(path, message, hint)
        else:
            ctx.warn(path, message + " (we use it as one static part)", hint)
        return
    for j, part in enumerate(prompt):
        _check_prompt_part(ctx, part, (*path, j))


def _check_prompt_part(ctx: Ctx, part: Any, path: tuple[Any, ...]) -> None:
    if isinstance(part, str):
        ctx.warn(path, "a prompt part is a plain string (used as static content)")
        return
    if not isinstance(part, dict):
        ctx.add(path, f"a prompt part must be a map with 'type', not {kind_of(part)}")
        return
    ptype = part.get("type")
    if not isinstance(ptype, str) or ptype not in PROMPT_PART_FIELDS:
        ctx.add(
            (*path, "type"),
            f"unknown prompt part type {ptype!r}",
            nearest(str(ptype), PROMPT_PART_FIELDS),
        )
        return
    required, optional = PROMPT_PART_FIELDS[ptype]
    for key in required:
        if part.get(key) is None:
            ctx.add(path, f"a {ptype} prompt part needs '{key}'")
    for key in part:
        if key != "type" and key not in required and key not in optional:
            ctx.warn((*path, key), f"unknown field '{key}' in a {ptype} prompt part (ignored)")
    if ptype == "previous_response" and part.get("step") is not None:
        check_step_ref(ctx, str(part["step"]), (*path, "step"), "previous_response")
    if ptype == "file" and isinstance(part.get("path"), str):
        check_relative(ctx, part["path"], (*path, "path"), severity="warning")
