"""What the editor's panels show, computed from plain data (no reflex): problems placed on
nodes, the inspector's fields of one step with their current values, the run form's inputs,
and turning what a form sends back into a YAML value.

Node ids are step paths joined with ``/`` (``analyze``, ``loop/inner``, ``par/task``), as in
``editor.graph``; problem paths look like ``steps[2].steps[0].prompt[1].content``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from elexirion_app.core.errors import InputError, PipelineValidationError, Problem

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
# Where child steps live inside a step, by key (an inline pipeline nests one level more).
CHILD_KEYS = ("steps", "parallel_tasks")
MAX_FIELD_CHARS = 200_000


def split_path(path: str) -> list[str | int]:
    """``steps[2].prompt[0]`` → ``["steps", 2, "prompt", 0]``."""
    out: list[str | int] = []
    for name, index in _SEGMENT.findall(path or ""):
        out.append(int(index) if index else name)
    return out


def _name_of(step: Any, fallback: str) -> str:
    if isinstance(step, Mapping):
        for key in ("name", "id"):
            value = step.get(key)
            if isinstance(value, str | int) and str(value):
                return str(value)
    return fallback


def node_of_path(workflow: Mapping[str, Any], path: str) -> str | None:
    """The node (step) a problem at ``path`` belongs to, deepest step first; None when the
    path is outside every step (top-level keys, defaults)."""
    parts = split_path(path)
    node: list[str] = []
    here: Any = workflow
    i = 0
    while i + 1 < len(parts):
        key, index = parts[i], parts[i + 1]
        if key == "pipeline" and isinstance(here, Mapping) and isinstance(index, str):
            here, i = here.get("pipeline"), i + 1
            continue
        if key not in CHILD_KEYS or not isinstance(index, int) or not isinstance(here, Mapping):
            break
        items = here.get(key)
        if not isinstance(items, list) or index >= len(items):
            break
        here = items[index]
        node.append(_name_of(here, f"{key}[{index}]"))
        i += 2
    return "/".join(node) or None


def step_at(workflow: Mapping[str, Any], node_id: str) -> Mapping[str, Any] | None:
    """The step mapping of a node id, or None."""
    if not isinstance(node_id, str) or not node_id:
        return None
    here: Any = workflow
    for name in node_id.split("/"):
        if isinstance(here, Mapping) and isinstance(here.get("pipeline"), Mapping):
            inner = here["pipeline"]
            here = inner if "steps" in inner and "steps" not in here else here
        found = None
        for key in CHILD_KEYS:
            items = here.get(key) if isinstance(here, Mapping) else None
            for item in items if isinstance(items, list) else []:
                if _name_of(item, "") == name:
                    found = item
                    break
            if found is not None:
                break
        if found is None:
            return None
        here = found
    return here if isinstance(here, Mapping) else None


def problem_rows(workflow: Mapping[str, Any], problems: list[Problem]) -> list[dict[str, Any]]:
    """The problems list: errors first, then by line."""
    rows = [
        {
            "line": p.line or 0,
            "severity": p.severity,
            "path": p.path,
            "message": p.message,
            "hint": p.hint,
            "node": node_of_path(workflow, p.path) or "",
            "file": "" if p.file in ("", "<editor>") else p.file,
        }
        for p in problems
    ]
    rows.sort(key=lambda r: (r["severity"] != "error", r["line"]))
    return rows


def node_problems(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Node id → the first error placed on it (warnings do not mark nodes)."""
    out: dict[str, str] = {}
    for r in rows:
        if r["severity"] == "error" and r["node"] and r["node"] not in out:
            out[r["node"]] = r["message"]
    return out


def diagnostics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lint markers for the YAML editor (problems of nested files are not in this text)."""
    return [
        {"line": max(1, r["line"]), "severity": r["severity"], "message": r["message"]}
        for r in rows
        if not r["file"]
    ]


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "bool":
        return "true" if value is True else "false" if value is False else str(value)
    if kind in ("list", "object"):
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).strip()
    if isinstance(value, list | dict):  # a field that takes text or a list (data_source)
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return str(value)


def _get(step: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    here: Any = step
    for key in path:
        if not isinstance(here, Mapping):
            return None
        here = here.get(key)
    return here


def inspector_fields(step: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The generated form of a step (from the spec) with the step's current values."""
    from elexirion_app.pipelines.spec.forms import form_fields

    step_type = str(step.get("type") or "")
    try:
        fields = form_fields(step_type)
    except (KeyError, ValueError):
        return []
    rows = []
    for f in fields:
        if f.kind in ("prompt", "steps") or f.path in (("name",), ("type",)):
            continue
        value = _get(step, f.path)
        rows.append(
            {
                "key": ".".join(f.path),
                "label": f.label,
                "kind": f.kind,
                "description": f.description,
                "options": list(f.options),
                "value": _shown(value, f.kind),
                "group": f.group,
                "set": value is not None,
            }
        )
    return rows


def prompt_parts(step: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The step's prompt parts as rows: index, type, the main text and what it refers to."""
    prompt = step.get("prompt")
    parts = prompt if isinstance(prompt, list) else []
    rows = []
    for i, part in enumerate(parts):
        if not isinstance(part, Mapping):
            continue
        kind = str(part.get("type") or "")
        main = {"static": "content", "file": "path", "previous_response": "step"}.get(
            kind, "content"
        )
        rows.append(
            {
                "index": i,
                "type": kind,
                "field": main,
                "value": _shown(part.get(main), "text"),
            }
        )
    return rows


def coerce(kind: str, raw: Any, options: list[str] | None = None) -> Any:
    """A form value as the YAML value for a field of ``kind`` ("" or None: remove the key)."""
    if raw is None or raw == "":
        return None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "on", "yes", "1"):
            return True
        if str(raw).lower() in ("false", "off", "no", "0"):
            return False
        raise InputError("choose true or false")
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise InputError("that value is not valid")
    text = str(raw)
    if len(text) > MAX_FIELD_CHARS:
        raise InputError(f"a field holds at most {MAX_FIELD_CHARS:,} characters")
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError as exc:
            raise InputError("enter a whole number") from exc
    if kind == "number":
        try:
            number = float(text.strip())
        except ValueError as exc:
            raise InputError("enter a number") from exc
        if number != number or number in (float("inf"), float("-inf")):
            raise InputError("enter a finite number")
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "enum" and options and text not in options:
        raise InputError(f"choose one of {', '.join(options)}")
    if kind in ("list", "object"):
        from elexirion_app.pipelines.loader import parse_yaml

        try:  # the loader's caps (aliases, depth, expansion), not a bare safe_load
            value, _lines = parse_yaml(text, "<field>")
        except PipelineValidationError as exc:
            raise InputError("that is not valid YAML") from exc
        json.dumps(value, default=str)  # plain data only
        return value
    return text


def input_rows(workflow: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run form: the pipeline's declared inputs with defaults shown as text."""
    from elexirion_app.pipelines.defaults import declared_inputs

    return [
        {
            "name": str(spec["name"]),
            "description": str(spec.get("description") or ""),
            "required": bool(spec.get("required")),
            "default": "" if spec.get("default") is None else str(spec.get("default")),
        }
        for spec in declared_inputs(workflow)
    ]
