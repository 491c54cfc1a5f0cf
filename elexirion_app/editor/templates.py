"""Minimal valid templates of every step type, and unique step names.

CONTRACT:
- ``STEP_TYPES`` — every step type of the spec (``pipelines.spec.STEP_MODELS``), in its order.
- ``step_template(step_type, name, taken) -> dict`` — a small step of that type that passes
  validation on its own (a claude step has ``prompt: [{type: static, content: ...}]``, a
  for_loop an iterator, a data source and one child step, ...); children get names not in
  ``taken`` (which is updated). ``InputError`` for an unknown type.
- ``task_template(task_id)`` — a parallel_claude task.
- ``unique_name(base, taken)`` — ``base_1``, ``base_2`` ... the first one not in ``taken``.
- ``check_name(name)`` — ``InputError`` unless the name can be referenced
  (``previous_response:name``): letters, digits, ``_`` and ``-``, not starting with a digit.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from elexirion_app.core.errors import InputError
from elexirion_app.pipelines.spec import STEP_MODELS

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
MAX_NAME = 100


def _type_of(model: Any) -> str:
    return str(model.model_fields["type"].annotation.__args__[0])


STEP_TYPES: tuple[str, ...] = tuple(_type_of(m) for m in STEP_MODELS)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_NAME:
        raise InputError(
            f"{str(name)[:MAX_NAME]!r} is not a usable step name: use letters, digits, '_' "
            f"and '-' (not starting with a digit, at most {MAX_NAME} characters)"
        )
    return name


def unique_name(base: str, taken: set[str]) -> str:
    n = 1
    while f"{base}_{n}" in taken:
        n += 1
    name = f"{base}_{n}"
    taken.add(name)
    return name


def _static(text: str) -> list[dict[str, Any]]:
    return [{"type": "static", "content": text}]


def task_template(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "prompt": _static("Describe this task.")}


def step_template(step_type: str, name: str, taken: set[str]) -> dict[str, Any]:
    """A minimal valid step of ``step_type`` named ``name`` (see the module docstring)."""
    if step_type not in STEP_TYPES:
        close = difflib.get_close_matches(str(step_type), STEP_TYPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"unknown step type {str(step_type)[:100]!r}{hint}; known: {', '.join(STEP_TYPES)}"
        )
    step: dict[str, Any] = {"name": name, "type": step_type}
    prompt = _static("Describe what this step should do.")
    if step_type in ("claude", "gemini", "claude_smart", "claude_session", "claude_robust"):
        step["prompt"] = prompt
    elif step_type == "claude_extract":
        step["prompt"] = prompt
        step["extraction_config"] = {"format": "text"}
    elif step_type == "gemini_instructor":
        step["prompt"] = prompt
        step["response_schema"] = {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
        }
    elif step_type == "claude_batch":
        step["tasks"] = [{"task_id": "task_1", "prompt": _static("Describe this task.")}]
    elif step_type == "parallel_claude":
        step["parallel_tasks"] = [task_template("task_1")]
    elif step_type == "set_variable":
        step["variables"] = {"value": "text"}
    elif step_type == "for_loop":
        step["iterator"] = "item"
        step["data_source"] = ["first", "second"]
        child = unique_name(f"{name}_step", taken)
        step["steps"] = [
            {"name": child, "type": "claude", "prompt": _static("Work on {{loop.item}}.")}
        ]
    elif step_type == "while_loop":
        step["condition"] = "loop.index < 3"
        step["max_iterations"] = 3
        child = unique_name(f"{name}_step", taken)
        step["steps"] = [{"name": child, "type": "claude", "prompt": _static("Improve it.")}]
    elif step_type == "data_transform":
        step["input_source"] = [{"value": 1}, {"value": 2}]
        step["operations"] = [{"operation": "sort", "field": "value"}]
    elif step_type == "file_ops":
        step["operation"] = "list"
        step["path"] = "."
    elif step_type == "pipeline":
        child = unique_name(f"{name}_step", set())
        step["pipeline"] = {
            "name": f"{name}_pipeline",
            "steps": [{"name": child, "type": "claude", "prompt": prompt}],
        }
    elif step_type == "test_echo":
        step["value"] = "hello"
    return step
