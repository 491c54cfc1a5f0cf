"""The node/edge model of a pipeline, for the graph view.

CONTRACT:
- ``graph_of(data) -> Graph`` — ``data`` is a loaded file (``{"workflow": ...}``) or a bare
  ``name``/``steps`` document. One ``Node`` per step map (ids as in ``editor/tree.py``:
  ``analyze``, ``loop/inner``, ``par/task_id``); for/while loops, parallel_claude and inline
  nested pipelines are group nodes, their children have ``parent`` = the group's id.
  ``model`` is the step's model (``claude_options.model``, ``model``, then the workflow's
  defaults) or ``""``. Edges: ``order`` between consecutive sibling steps (not between the
  tasks of a parallel_claude, which run together), ``loop`` from a loop body's last step back
  to its loop, ``data`` from every step another one reads (``previous_response`` parts,
  ``{{steps.X...}}`` / ``{{X.field}}`` templates, conditions, data sources) to the reader;
  deduplicated, never dangling. Never raises on half-typed documents: what cannot be placed
  is skipped.
- ``Graph.to_props() -> (nodes, edges)`` — lists of JSON-safe dicts with the dataclass fields.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from elexirion_app.editor import tree
from elexirion_app.editor.refs import referenced_names
from elexirion_app.editor.tree import StepRef

ICONS = {
    "claude": "bot",
    "gemini": "sparkles",
    "gemini_instructor": "braces",
    "parallel_claude": "split",
    "claude_smart": "brain",
    "claude_session": "messages-square",
    "claude_extract": "file-search",
    "claude_batch": "layers",
    "claude_robust": "shield-check",
    "for_loop": "repeat",
    "while_loop": "refresh-cw",
    "set_variable": "variable",
    "data_transform": "table",
    "file_ops": "folder",
    "pipeline": "workflow",
    "test_echo": "flask-conical",
    tree.TASK_TYPE: "bot",
}
UNKNOWN_ICON = "circle-help"
GEMINI_TYPES = frozenset({"gemini", "gemini_instructor"})
CLAUDE_TYPES = frozenset(
    {
        "claude",
        "parallel_claude",
        "claude_smart",
        "claude_session",
        "claude_extract",
        "claude_batch",
        "claude_robust",
        tree.TASK_TYPE,
    }
)


@dataclass(frozen=True)
class Node:
    id: str
    step: str  # the step's name (a task's id)
    type: str
    label: str
    model: str
    parent: str
    index: int
    group: bool
    icon: str


@dataclass(frozen=True)
class Edge:
    id: str
    source: str
    target: str
    kind: str  # "order" | "data" | "loop"


_NODE_FIELDS = tuple(f.name for f in fields(Node))
_EDGE_FIELDS = tuple(f.name for f in fields(Edge))


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def to_props(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        nodes = [{f: getattr(n, f) for f in _NODE_FIELDS} for n in self.nodes]
        edges = [{f: getattr(e, f) for f in _EDGE_FIELDS} for e in self.edges]
        return nodes, edges


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _model(ref: StepRef, data: Any) -> str:
    workflow = tree.get(data, ref.workflow)
    defaults = workflow.get("defaults") if isinstance(workflow, Mapping) else None
    defaults = defaults if isinstance(defaults, Mapping) else {}
    step = ref.step
    if ref.type in GEMINI_TYPES:
        return _text(step.get("model")) or _text(defaults.get("gemini_model"))
    if ref.type not in CLAUDE_TYPES:
        return ""
    options = step.get("claude_options")
    default_options = defaults.get("claude_options")
    return (
        (_text(options.get("model")) if isinstance(options, Mapping) else "")
        or _text(step.get("model"))
        or (_text(default_options.get("model")) if isinstance(default_options, Mapping) else "")
        or _text(defaults.get("claude_model"))
    )


def _node(ref: StepRef, data: Any) -> Node:
    label = ref.name or f"(unnamed {ref.type or 'step'})"
    return Node(
        id=ref.id,
        step=ref.name,
        type=ref.type,
        label=label,
        model=_model(ref, data),
        parent=ref.parent,
        index=ref.index,
        group=ref.kind == "step" and tree.is_group(ref.step),
        icon=ICONS.get(ref.type, UNKNOWN_ICON),
    )


def graph_of(data: Mapping[str, Any]) -> Graph:
    """See the module docstring."""
    refs = tree.walk(data)
    nodes = tuple(_node(ref, data) for ref in refs)
    edges: dict[str, Edge] = {}

    def add(source: str, target: str, kind: str) -> None:
        edge_id = f"{kind}:{source}->{target}"
        if source != target and edge_id not in edges:
            edges[edge_id] = Edge(edge_id, source, target, kind)

    children: dict[str, list[StepRef]] = {}
    for ref in refs:
        children.setdefault(ref.parent, []).append(ref)
    by_id = {ref.id: ref for ref in refs}
    for parent, group in children.items():
        steps = [r for r in group if r.kind == "step"]
        for a, b in itertools.pairwise(steps):
            add(a.id, b.id, "order")
        owner = by_id.get(parent)
        if owner is not None and owner.type in tree.LOOP_TYPES and steps:
            add(steps[-1].id, owner.id, "loop")
    names = _names(refs)
    for ref in refs:
        for name in sorted(referenced_names(ref.step, ref.kind)):
            source = _resolve(name, ref, names, by_id)
            if source is not None:
                add(source, ref.id, "data")
    return Graph(nodes, tuple(edges.values()))


def _names(refs: list[StepRef]) -> dict[tuple[tree.Path, str], list[StepRef]]:
    """Steps by (workflow, name): the names a reference can mean."""
    table: dict[tuple[tree.Path, str], list[StepRef]] = {}
    for ref in refs:
        if ref.kind == "step" and ref.name:
            table.setdefault((ref.workflow, ref.name), []).append(ref)
    return table


def _resolve(
    name: str,
    reader: StepRef,
    names: dict[tuple[tree.Path, str], list[StepRef]],
    by_id: dict[str, StepRef],
) -> str | None:
    """The step a name read by ``reader`` means: a sibling, else an ancestor's, else any."""
    candidates = names.get((reader.workflow, name))
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0].id
    parent: str | None = reader.parent
    while parent is not None:
        for cand in candidates:
            if cand.parent == parent:
                return cand.id
        owner = by_id.get(parent) if parent else None
        parent = owner.parent if owner is not None else None
    return candidates[0].id
