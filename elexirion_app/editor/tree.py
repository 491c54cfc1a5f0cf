"""The steps of a loaded document as a tree: ids, parents, containers, owning workflow.

CONTRACT:
- ``walk(data) -> list[StepRef]`` — every step mapping in pre-order, for the whole file
  (``{"workflow": ...}``) or a bare ``name``/``steps`` document. Never raises on half-typed
  documents: entries that are not maps are skipped (their index still counts).
- Ids are step paths joined with ``/``: ``analyze``, ``loop/inner``, ``par/task_id``,
  ``nested/child``; an unnamed step is ``#<index>``; a clash gets ``~2``, ``~3`` ...
- Containers: ``steps`` of for_loop/while_loop, ``parallel_tasks`` of parallel_claude (tasks,
  type ``parallel_task``), ``pipeline.steps`` or ``pipeline.workflow.steps`` of an inline
  nested pipeline (its own workflow: own defaults, own reference scope).
- ``find(data, step_id)`` — the ``StepRef`` or ``InputError`` naming the closest id.
- ``workflow_of(data)`` — the path of the workflow mapping (``("workflow",)`` or ``()``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elexirion_app.core.errors import InputError

Path = tuple[str | int, ...]
LOOP_TYPES = frozenset({"for_loop", "while_loop"})
TASK_TYPE = "parallel_task"


@dataclass(frozen=True)
class StepRef:
    id: str
    name: str  # "" when the step has no usable name
    type: str  # the step's type ("" when missing), "parallel_task" for a task
    parent: str  # the parent step's id, "" at the top
    index: int  # the index in its container list
    path: Path  # key path from the document root to the step mapping
    container: Path  # key path to the list holding it
    workflow: Path  # key path to the workflow mapping owning it
    kind: str  # "step" | "task"
    step: Mapping[str, Any]


@dataclass(frozen=True)
class Container:
    """A list of children of a step: where it is, what it holds, the workflow it belongs to."""

    path: Path
    kind: str  # "step" | "task"
    workflow: Path


def workflow_of(data: Any) -> Path | None:
    if not isinstance(data, Mapping):
        return None
    inner = data.get("workflow")
    if isinstance(inner, Mapping):
        return ("workflow",)
    if "workflow" not in data and isinstance(data.get("steps"), list):
        return ()
    return None


def get(data: Any, path: Path) -> Any:
    cur = data
    for key in path:
        if isinstance(cur, Mapping) and not isinstance(key, int):
            cur = cur.get(key)
        elif isinstance(cur, Sequence) and not isinstance(cur, str) and isinstance(key, int):
            cur = cur[key] if 0 <= key < len(cur) else None
        else:
            return None
    return cur


def step_type(step: Mapping[str, Any]) -> str:
    value = step.get("type")
    return value if isinstance(value, str) else ""


def scalar_name(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return str(value).strip()


def containers(step: Mapping[str, Any], path: Path, workflow: Path) -> list[Container]:
    """The child lists a step holds (relative to the document root)."""
    kind = step_type(step)
    if kind in LOOP_TYPES:
        return [Container((*path, "steps"), "step", workflow)]
    if kind == "parallel_claude":
        return [Container((*path, "parallel_tasks"), "task", workflow)]
    if kind == "pipeline":
        inline = step.get("pipeline")
        if isinstance(inline, Mapping):
            if "steps" in inline:
                return [Container((*path, "pipeline", "steps"), "step", (*path, "pipeline"))]
            wrapped = inline.get("workflow")
            if isinstance(wrapped, Mapping):
                inner = (*path, "pipeline", "workflow")
                return [Container((*inner, "steps"), "step", inner)]
    return []


def is_group(step: Mapping[str, Any]) -> bool:
    kind = step_type(step)
    return kind in LOOP_TYPES or kind == "parallel_claude" or bool(containers(step, (), ()))


_last_walk: tuple[Any, list[StepRef]] = (None, [])


def walk_kept(data: Any) -> list[StepRef]:
    """``walk`` for a document's own data, which is never mutated (an edit is a new object):
    the last answer is kept, as one edit looks its steps up several times."""
    global _last_walk
    seen, refs = _last_walk
    if seen is not data or data is None:
        refs = walk(data)
        _last_walk = (data, refs)
    return list(refs)


def walk(data: Any) -> list[StepRef]:
    """Every step in pre-order (see the module docstring)."""
    root = workflow_of(data)
    if root is None:
        return []
    out: list[StepRef] = []
    taken: dict[str, int] = {}
    stack: list[tuple[Container, str]] = [(Container((*root, "steps"), "step", root), "")]
    while stack:
        container, parent = stack.pop()
        items = get(data, container.path)
        if not isinstance(items, list):
            continue
        found: list[StepRef] = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue
            key = "id" if container.kind == "task" else "name"
            name = scalar_name(item.get(key))
            sid = _unique(f"{parent}/" if parent else "", name or f"#{index}", taken)
            found.append(
                StepRef(
                    id=sid,
                    name=name,
                    type=TASK_TYPE if container.kind == "task" else step_type(item),
                    parent=parent,
                    index=index,
                    path=(*container.path, index),
                    container=container.path,
                    workflow=container.workflow,
                    kind=container.kind,
                    step=item,
                )
            )
        # children are walked right after their parent: push in reverse
        for ref in found:
            out.append(ref)
            if ref.kind == "step":
                for child in reversed(containers(ref.step, ref.path, ref.workflow)):
                    stack.append((child, ref.id))
    return _preorder(out)


def _unique(prefix: str, segment: str, taken: dict[str, int]) -> str:
    """``prefix + segment``, or with the first free ``~n`` suffix. ``taken`` maps every id
    handed out to the next suffix to try for it, so n steps named alike cost O(n), not
    O(n²) (each new one starts where the last one stopped)."""
    base = prefix + segment
    sid, n = base, taken.get(base, 2)
    if sid in taken:
        sid = f"{base}~{n}"
        while sid in taken:
            n += 1
            sid = f"{base}~{n}"
        taken[base] = n + 1
    taken.setdefault(sid, 2)
    return sid


def _preorder(refs: list[StepRef]) -> list[StepRef]:
    by_parent: dict[str, list[StepRef]] = {}
    for ref in refs:
        by_parent.setdefault(ref.parent, []).append(ref)
    out: list[StepRef] = []
    stack = list(reversed(by_parent.get("", [])))
    while stack:
        ref = stack.pop()
        out.append(ref)
        stack.extend(reversed(by_parent.get(ref.id, [])))
    return out


def _require_steps(data: Any) -> Path:
    root = workflow_of(data)
    if root is None or not isinstance(get(data, (*root, "steps")), list):
        raise InputError("the document has no workflow.steps list to edit")
    return root


def find(data: Any, step_id: str) -> StepRef:
    """The step with this id, or ``InputError`` naming the closest one."""
    _require_steps(data)
    refs = walk_kept(data)
    for ref in refs:
        if ref.id == step_id:
            return ref
    close = difflib.get_close_matches(str(step_id), [r.id for r in refs], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(f"there is no step {str(step_id)[:200]!r}{hint}")


def container_of(data: Any, parent_id: str) -> Container:
    """The list new steps go into: the top-level steps, or the children of ``parent_id``."""
    root = _require_steps(data)
    if not parent_id:
        return Container((*root, "steps"), "step", root)
    parent = find(data, parent_id)
    if parent.kind == "task":
        raise InputError(f"{parent_id!r} is a parallel task: it cannot hold steps")
    found = containers(parent.step, parent.path, parent.workflow)
    if not found:
        if parent.type == "pipeline":
            return Container(
                (*parent.path, "pipeline", "steps"), "step", (*parent.path, "pipeline")
            )
        raise InputError(
            f"step {parent_id!r} is a {parent.type or 'step without type'}: only for_loop, "
            "while_loop, parallel_claude and inline pipeline steps hold steps"
        )
    return found[0]


def names_in(data: Any, workflow: Path) -> set[str]:
    """Every step name of one workflow (its loops included, nested pipelines not)."""
    return {
        r.name for r in walk_kept(data) if r.workflow == workflow and r.kind == "step" and r.name
    }
