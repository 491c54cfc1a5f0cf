"""Prompt-part assembly: ``static``, ``file``, ``previous_response``, ``session_context``,
``claude_continue``; parts are joined with a newline."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from elexirion_app.core.errors import StepError
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.steps.util import MISSING, get_path

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

MAX_FILE_BYTES = 2_000_000


def format_value(value: Any) -> str:
    """How a value is put into a prompt: strings raw, LLM results as their text, rest JSON."""
    if value is None:
        return "nil"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("text", "content", "combined_results"):
            if isinstance(value.get(key), str):
                return str(value[key])
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def read_workspace_file(ctx: RunContext, path: str, step: str) -> str:
    target = resolve_in_workspace(ctx.workspace, path)
    if not target.is_file():
        raise StepError(step, f"file {path!r} does not exist in the workspace")
    if target.stat().st_size > MAX_FILE_BYTES:
        raise StepError(step, f"file {path!r} is larger than {MAX_FILE_BYTES} bytes")
    return target.read_text(encoding="utf-8", errors="replace")


def previous_response(part: Mapping[str, Any], scope: Scope, step: str) -> str:
    source = str(part.get("step", ""))
    if source not in scope.steps:
        raise StepError(step, f"previous_response refers to {source!r}, which has not run")
    result = scope.steps[source]
    extract = part.get("extract")
    if not extract:
        return format_value(result)
    value = get_path(result, str(extract))
    if value is MISSING:
        if part.get("strict"):
            raise StepError(step, f"previous_response: {source}.{extract} does not exist")
        return "nil"
    return format_value(value)


async def session_text(ctx: RunContext, session_id: str) -> str:
    if ctx.session_store is None or not session_id:
        return ""
    maybe = ctx.session_store(session_id)
    text = await maybe if inspect.isawaitable(maybe) else maybe
    return str(text or "")


async def build_prompt(ctx: RunContext, parts: Any, scope: Scope, step: str) -> str:
    """Join the (already rendered) prompt parts with newlines."""
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    if isinstance(parts, Mapping):
        parts = [parts]
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if not isinstance(part, Mapping):
            raise StepError(step, f"prompt part {part!r} is not a map")
        kind = part.get("type", "static")
        if kind == "static":
            out.append(format_value(part.get("content", "")))
        elif kind == "file":
            out.append(read_workspace_file(ctx, str(part.get("path", "")), step))
        elif kind == "previous_response":
            out.append(previous_response(part, scope, step))
        elif kind in ("session_context", "claude_continue"):
            text = await session_text(ctx, str(part.get("session_id", "")))
            if kind == "claude_continue" and part.get("new_prompt"):
                text = f"{text}\n{part['new_prompt']}" if text else str(part["new_prompt"])
            out.append(text)
        else:
            raise StepError(step, f"unknown prompt part type {kind!r}")
    return "\n".join(out)
