"""Small helpers shared by step implementations: paths into results, data sources."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from elexirion_app.pipelines.scope import Scope

T = TypeVar("T")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def split_path(path: str | Sequence[str] | None) -> list[str]:
    if path is None:
        return []
    if isinstance(path, str):
        return [p for p in path.replace(":", ".").split(".") if p]
    return [str(p) for p in path]


def get_path(value: Any, path: str | Sequence[str] | None) -> Any:
    """Follow ``a.b.0`` into maps and lists; ``MISSING`` when a segment does not exist.

    When a segment is missing in an LLM result (``text``/``content``) whose text is JSON, the
    rest of the path is looked up in the parsed JSON.
    """
    current = value
    for seg in split_path(path):
        nxt = _step_into(current, seg)
        if nxt is MISSING and isinstance(current, Mapping):
            parsed = parse_json_text(current)
            if parsed is not None:
                nxt = _step_into(parsed, seg)
            if nxt is MISSING and isinstance(current.get("individual_results"), Mapping):
                nxt = _step_into(current["individual_results"], seg)
        if nxt is MISSING:
            return MISSING
        current = nxt
    return current


def _step_into(current: Any, seg: str) -> Any:
    if isinstance(current, Mapping):
        if seg in current:
            return current[seg]
        return MISSING
    if isinstance(current, list | tuple):
        if seg == "length":
            return len(current)
        try:
            return current[int(seg)]
        except (ValueError, IndexError):
            return MISSING
    if isinstance(current, str) and seg == "length":
        return len(current)
    return MISSING


def parse_json_text(result: Any) -> Any:
    """The JSON inside an LLM result's text (also inside a fenced block), or None."""
    text = result.get("text", result.get("content")) if isinstance(result, Mapping) else result
    if not isinstance(text, str):
        return None
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.strip("`")
        first_newline = candidate.find("\n")
        candidate = candidate[first_newline + 1 :] if first_newline >= 0 else candidate
    if not candidate or candidate[0] not in "[{":
        return None
    try:
        return json.loads(candidate)
    except ValueError:
        return None


def unwrap(value: Any) -> Any:
    """Data inside a result: a data_transform's output field, or an LLM result's JSON text."""
    if isinstance(value, Mapping):
        meta = value.get("metadata")
        if isinstance(meta, Mapping) and meta.get("output_field") in value:
            return value[meta["output_field"]]
        if "text" in value and "success" in value:
            parsed = parse_json_text(value)
            return parsed if parsed is not None else value["text"]
    return value


def _find_output_field(scope: Scope, key: str) -> Any:
    for result in reversed(list(scope.steps.values())):
        if isinstance(result, Mapping) and key in result:
            return result[key]
    return MISSING


def _step_and_path(scope: Scope, rest: str) -> Any:
    segs = split_path(rest)
    if not segs:
        return MISSING
    head, tail = segs[0], segs[1:]
    if head in scope.steps:
        base = scope.steps[head]
    else:
        base = _find_output_field(scope, head)
        if base is MISSING:
            return MISSING
    if not tail:
        return unwrap(base)
    return get_path(unwrap(base) if not isinstance(unwrap(base), str) else base, tail)


def resolve_source(spec: Any, scope: Scope) -> Any:
    """A ``data_source``/``input_source``: ``MISSING`` when it names nothing.

    Forms: a literal list/map (e.g. a rendered ``{{…}}``); ``previous_response`` or
    ``previous_response:<path>`` (a path into the previous step's result, or ``step.path``);
    ``context:field``; ``step``, ``step:field.path`` or ``step.field.path``; a variable name.
    """
    if not isinstance(spec, str):
        return spec
    text = spec.strip()
    if text.startswith("previous_response"):
        rest = text[len("previous_response") :].lstrip(":.")
        if not rest:
            if not scope.steps:
                return MISSING
            return unwrap(list(scope.steps.values())[-1])
        found = _step_and_path(scope, rest)
        if found is MISSING and scope.steps:
            previous = list(scope.steps.values())[-1]
            found = get_path(unwrap(previous), rest)
        return found
    if text.startswith("context:"):
        rest = text[len("context:") :]
        for source in (scope.variables, scope.loop or {}, scope.inputs, scope.global_vars):
            found = get_path(source, rest)
            if found is not MISSING:
                return found
        return MISSING
    found = _step_and_path(scope, text)
    if found is not MISSING:
        return found
    for source in (scope.loop or {}, scope.variables, scope.inputs, scope.global_vars):
        found = get_path(source, text)
        if found is not MISSING:
            return found
    return MISSING


def to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


async def gather_or_cancel(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Like ``asyncio.gather`` but the first failure cancels the siblings (no orphan calls)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if failed:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            first = min(failed, key=tasks.index)
            raise first.exception()  # type: ignore[misc]
        return [t.result() for t in tasks]
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
