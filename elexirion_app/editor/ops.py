"""Graph edits as lists of primitive changes, computed from a document's plain data.

CONTRACT (each raises ``InputError`` with a clear message for an unknown step id, a wrong
index, an unknown step type, a bad name, or a document without ``workflow.steps``):
- ``insert(data, step_type, parent, index, name) -> (changes, path of the new step)``
- ``delete(data, step_id)``, ``move(data, step_id, new_index)``,
  ``set_field(data, step_id, path, value)`` (``None`` deletes the key),
  ``rename(data, step_id, new_name)`` (also every reference to the old name in the same
  workflow: ``previous_response`` parts, templates, conditions, data sources),
  ``connect(data, source_id, target_id)`` (a ``previous_response`` part appended to the
  target's prompt list, nothing when it is already there) ``-> changes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elexirion_app.core.errors import InputError
from elexirion_app.editor import refs, templates, tree
from elexirion_app.editor.primitives import (
    Change,
    DeleteKey,
    ListDelete,
    ListInsert,
    ListMove,
    SetValue,
)
from elexirion_app.editor.tree import Path, StepRef

MAX_FIELD_PATH = 20


def _index_error(index: object, top: int, what: str) -> InputError:
    return InputError(f"index {index!r} is out of range for {what}: use 0 to {top}")


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def insert(
    data: Any, step_type: str, parent: str, index: int | None, name: str | None
) -> tuple[list[Change], Path]:
    container = tree.container_of(data, parent)
    items = tree.get(data, container.path)
    if items is not None and not isinstance(items, list):
        raise InputError(f"the steps of {parent or 'the workflow'} are not a list")
    count = len(items) if items is not None else 0
    where = f"the steps of {parent!r}" if parent else "the top-level steps"
    if index is None:
        index = count
    if not _int(index) or not 0 <= index <= count:
        raise _index_error(index, count, where)
    if container.kind == "task":
        if step_type not in ("claude", tree.TASK_TYPE):
            raise InputError("a parallel_claude step holds Claude tasks: add a 'claude' step")
        taken = {tree.scalar_name(t.get("id")) for t in items or () if isinstance(t, Mapping)}
        task_id = _new_name(name, taken, "task")
        value: dict[str, Any] = templates.task_template(task_id)
    else:
        templates.step_template(step_type, "x", set())  # unknown types fail before names do
        taken = tree.names_in(data, container.workflow)
        value = templates.step_template(step_type, _new_name(name, taken, step_type), taken)
    path = (*container.path, index)
    if items is None:
        return [SetValue(container.path, [value])], path
    return [ListInsert(container.path, index, value)], path


def _new_name(name: str | None, taken: set[str], base: str) -> str:
    if name is None:
        return templates.unique_name(base, taken)
    templates.check_name(name)
    if name in taken:
        raise InputError(f"a step named {name!r} already exists here: choose another name")
    taken.add(name)
    return name


def delete(data: Any, step_id: str) -> list[Change]:
    ref = tree.find(data, step_id)
    return [ListDelete(ref.container, ref.index)]


def move(data: Any, step_id: str, new_index: int) -> list[Change]:
    ref = tree.find(data, step_id)
    siblings = tree.get(data, ref.container)
    count = len(siblings) if isinstance(siblings, list) else 0
    if not _int(new_index) or not 0 <= new_index < count:
        raise _index_error(new_index, count - 1, f"the siblings of {step_id!r}")
    if new_index == ref.index:
        return []
    return [ListMove(ref.container, ref.index, new_index)]


def set_field(data: Any, step_id: str, path: tuple[str | int, ...], value: Any) -> list[Change]:
    ref = tree.find(data, step_id)
    path = tuple(path)
    if not path or len(path) > MAX_FIELD_PATH:
        raise InputError(f"name the field to set (1 to {MAX_FIELD_PATH} keys)")
    for key in path:
        if not (isinstance(key, str) and key) and not _int(key):
            raise InputError(f"a field path holds names and list indexes, not {key!r}")
    full = (*ref.path, *path)
    parent = tree.get(data, full[:-1])
    last = path[-1]
    in_list = isinstance(parent, list) and _int(last)
    if value is None:
        if in_list and 0 <= int(last) < len(parent):
            return [ListDelete(full[:-1], int(last))]  # a list item goes with its lines
        return [DeleteKey(full)] if isinstance(parent, Mapping) and last in parent else []
    if in_list and int(last) == len(parent):
        return [ListInsert(full[:-1], int(last), value)]  # appended as new lines
    if tree.get(data, full) == value and _same_type(tree.get(data, full), value):
        return []
    return [SetValue(full, value)]


def _same_type(a: Any, b: Any) -> bool:
    return type(a) is type(b)


def rename(data: Any, step_id: str, new_name: str) -> list[Change]:
    ref = tree.find(data, step_id)
    templates.check_name(new_name)
    if new_name == ref.name:
        return []
    key = "id" if ref.kind == "task" else "name"
    changes: list[Change] = [SetValue((*ref.path, key), new_name)]
    if ref.kind == "task":
        siblings = tree.get(data, ref.container) or []
        taken = {tree.scalar_name(t.get("id")) for t in siblings if isinstance(t, Mapping)}
        if new_name in taken:
            raise InputError(f"a task with id {new_name!r} already exists in this step")
        return changes
    if new_name in tree.names_in(data, ref.workflow):
        raise InputError(f"a step named {new_name!r} already exists: choose another name")
    if not ref.name:
        return changes
    for other in tree.walk_kept(data):
        if other.workflow != ref.workflow:
            continue
        for rel, text in refs.renamed_values(other.step, other.kind, ref.name, new_name):
            full = (*other.path, *rel)
            if full != (*ref.path, key):
                changes.append(SetValue(full, text))
    return changes


def connect(data: Any, source_id: str, target_id: str) -> list[Change]:
    source = tree.find(data, source_id)
    target = tree.find(data, target_id)
    if source.kind != "step" or not source.name:
        raise InputError(f"{source_id!r} has no step name that another step could read")
    if source.id == target.id:
        raise InputError("a step cannot read its own result")
    if source.workflow != target.workflow:
        raise InputError(f"{source_id!r} and {target_id!r} are in different pipelines")
    prompt = target.step.get("prompt")
    if not isinstance(prompt, list):
        raise InputError(
            f"step {target_id!r} has no prompt list to read {source_id!r} into "
            "(connect into a claude or gemini step, or edit its fields)"
        )
    if _reads(prompt, source):
        return []
    part = {"type": "previous_response", "step": source.name}
    return [ListInsert((*target.path, "prompt"), len(prompt), part)]


def _reads(prompt: list[Any], source: StepRef) -> bool:
    return any(
        isinstance(p, Mapping)
        and p.get("type") == "previous_response"
        and tree.scalar_name(p.get("step")) == source.name
        for p in prompt
    )
