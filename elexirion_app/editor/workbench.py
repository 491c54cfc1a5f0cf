"""The editor's server-side work on one text (no reflex): analyse it for the page (problems,
graph, lint markers) and apply the page's edits, each returning the new text and the node to
select. Called from the web state in a worker thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import InputError, PipelineValidationError, Problem
from elexirion_app.editor import view
from elexirion_app.editor.document import EditorDocument
from elexirion_app.editor.graph import graph_of
from elexirion_app.pipelines.loader import load_text
from elexirion_app.pipelines.validate import validate_document

OPEN_DOCUMENTS = 32
# Parsed documents cost ~47 bytes of memory per byte of YAML: the cache is budgeted by the
# characters of their texts, in all and per user, the least recently used evicted first.
CACHE_CHARS = 3_000_000
CACHE_CHARS_PER_USER = 1_200_000

_owner = threading.local()


def as_user(user_id: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with its documents kept under ``user_id``'s share of the cache."""
    _owner.user = user_id
    try:
        return fn(*args)
    finally:
        _owner.user = None


@dataclass
class _Kept:
    doc: EditorDocument
    chars: int
    owner: object


class _Documents:
    """Parsed documents of the texts edited last, by content: an edit of the text a tab shows
    reuses its document (and the node tree it keeps) instead of parsing 200 steps again.

    The lock guards only the table: an edit takes its document out (it is then the edit's
    alone), parses a missing one and edits it without any lock, and files it under its new
    text afterwards, so one user's slow parse holds back nobody else's edit. Two edits of the
    same text at once each work on a document of their own."""

    def __init__(self, size: int, chars: int, chars_per_user: int) -> None:
        self._size, self._chars, self._per_user = size, chars, chars_per_user
        self._docs: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def _take(self, key: str) -> EditorDocument | None:
        with self._lock:
            kept = self._docs.pop(key, None)
        return kept.doc if kept is not None else None

    def _keep(self, key: str, doc: EditorDocument, text: str) -> None:
        owner = getattr(_owner, "user", None)
        kept = _Kept(doc, len(text), owner)
        if kept.chars > min(self._chars, self._per_user):
            return  # larger than any share: never kept
        with self._lock:
            self._docs.pop(key, None)
            self._docs[key] = kept
            while len(self._docs) > self._size or self.chars() > self._chars:
                self._docs.popitem(last=False)
            while self.chars(owner) > self._per_user:
                oldest = next(k for k, v in self._docs.items() if v.owner == owner)
                del self._docs[oldest]

    def chars(self, owner: object = ...) -> int:
        """Characters of the texts kept (of ``owner``'s only, when given)."""
        return sum(v.chars for v in self._docs.values() if owner is ... or v.owner == owner)

    def edit(self, text: str, fn: Callable[[EditorDocument], Any]) -> tuple[str, Any]:
        key = self._key(text)
        doc = self._take(key)
        if doc is None:
            doc = EditorDocument.parse(text)
        try:
            result = fn(doc)
        except BaseException:
            # A failed edit leaves the document unchanged: keep it for the next try.
            self._keep(key, doc, text)
            raise
        new = doc.text
        self._keep(self._key(new), doc, new)
        return new, result


_DOCS = _Documents(OPEN_DOCUMENTS, CACHE_CHARS, CACHE_CHARS_PER_USER)


def _apply(text: str, fn: Callable[[EditorDocument], Any]) -> tuple[str, Any]:
    return _DOCS.edit(text, fn)


@dataclass(frozen=True)
class Edited:
    text: str
    select: str | None = None  # the node to select afterwards ("" clears the selection)


@dataclass(frozen=True)
class Shown:
    """What the page shows for one text. ``nodes``/``edges`` are None when the text does not
    parse (the page keeps the last graph it drew)."""

    problems: list[dict[str, Any]]
    diagnostics: list[dict[str, Any]]
    node_problems: dict[str, str]
    errors: int
    nodes: list[dict[str, Any]] | None
    edges: list[dict[str, Any]] | None
    workflow: Mapping[str, Any] = field(default_factory=dict)

    def step(self, node_id: str) -> Mapping[str, Any] | None:
        return view.step_at(self.workflow, node_id)


def analyse(text: str, base_dir: Path, layout: Mapping[str, Any]) -> Shown:
    problems: list[Problem]
    try:
        doc = load_text(text, filename="<editor>")
    except PipelineValidationError as exc:
        rows = view.problem_rows({}, list(exc.problems))
        return Shown(rows, view.diagnostics(rows), {}, _errors(rows), None, None)
    doc.base_dir = base_dir
    problems = validate_document(doc)
    workflow = doc.workflow
    rows = view.problem_rows(workflow, problems)
    nodes, edges = graph_of({"workflow": workflow}).to_props()
    for node in nodes:
        where = layout.get(node["id"])
        if isinstance(where, list | tuple) and len(where) == 2:
            node["x"], node["y"] = where
    return Shown(
        rows,
        view.diagnostics(rows),
        view.node_problems(rows),
        _errors(rows),
        nodes,
        edges,
        workflow,
    )


def _errors(rows: list[dict[str, Any]]) -> int:
    return sum(1 for r in rows if r["severity"] == "error")


def _parent(node_id: str) -> str:
    return node_id.rsplit("/", 1)[0] if "/" in node_id else ""


def insert_after(text: str, step_type: str, selected: str) -> Edited:
    """A new step after ``selected`` among its siblings (at the end when nothing is selected;
    inside a selected loop group when it is one)."""
    parent, index = "", None
    if selected:
        data = _data(text)
        step = view.step_at(data.get("workflow") or {}, selected)
        if step is not None and isinstance(step.get("steps"), list):
            parent = selected
        else:
            parent = _parent(selected)
            siblings = _siblings(data, parent)
            name = selected.rsplit("/", 1)[-1]
            positions = [i for i, s in enumerate(siblings) if _step_name(s) == name]
            index = positions[0] + 1 if positions else None
    new, step_id = _apply(text, lambda d: d.insert_step(step_type, parent=parent, index=index))
    return Edited(new, step_id)


def workflow_of(text: str) -> Mapping[str, Any]:
    """The plain ``workflow:`` content of a text ({} when it does not load)."""
    try:
        return load_text(text, filename="<editor>").workflow
    except PipelineValidationError:
        return {}


def _data(text: str) -> dict[str, Any]:
    try:
        data = load_text(text, filename="<editor>")
    except PipelineValidationError as exc:
        raise InputError("fix the YAML first: " + exc.problems[0].message) from exc
    return {"workflow": data.workflow}


def _step_name(step: Any) -> str:
    return str(step.get("name") or step.get("id") or "") if isinstance(step, Mapping) else ""


def _siblings(data: Mapping[str, Any], parent: str) -> list[Any]:
    workflow = data.get("workflow") or {}
    holder = view.step_at(workflow, parent) if parent else workflow
    if holder is None:
        return []
    if isinstance(holder.get("pipeline"), Mapping) and "steps" not in holder:
        holder = holder["pipeline"]
    for key in view.CHILD_KEYS:
        items = holder.get(key)
        if isinstance(items, list):
            return items
    return []


def delete(text: str, node_id: str, selected: str) -> Edited:
    new, _ = _apply(text, lambda d: d.delete_step(node_id))
    gone = selected == node_id or selected.startswith(node_id + "/")
    return Edited(new, "" if gone else None)


def connect(text: str, source: str, target: str) -> Edited:
    return Edited(_apply(text, lambda d: d.connect(source, target))[0], target)


def move(text: str, node_id: str, index: int) -> Edited:
    return Edited(_apply(text, lambda d: d.move_step(node_id, index))[0], node_id)


def set_value(text: str, node_id: str, path: tuple[str | int, ...], value: Any) -> Edited:
    clean = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in path)
    return Edited(_set(text, node_id, clean, value))


def _set(text: str, node_id: str, path: tuple[str | int, ...], value: Any) -> str:
    return _apply(text, lambda d: d.set_field(node_id, path, value))[0]


def add_part(text: str, node_id: str, part_type: str) -> Edited:
    step = view.step_at(_data(text)["workflow"], node_id)
    if step is None:
        raise InputError("That step does not exist.")
    prompt = step.get("prompt")
    index = len(prompt) if isinstance(prompt, list) else 0
    part: dict[str, Any] = {"type": part_type}
    if part_type == "static":
        part["content"] = "..."
    elif part_type == "file":
        part["path"] = "README.md"
    else:
        part["step"] = ""
    if not isinstance(prompt, list):
        return Edited(_set(text, node_id, ("prompt",), [part]))
    return Edited(_set(text, node_id, ("prompt", index), part))


def remove_part(text: str, node_id: str, index: int) -> Edited:
    return Edited(_set(text, node_id, ("prompt", index), None))


def rename(text: str, node_id: str, new_name: str) -> Edited:
    if not new_name:
        raise InputError("Give the step a name.")
    new, _ = _apply(text, lambda d: d.rename_step(node_id, new_name))
    return Edited(new, "/".join([*node_id.split("/")[:-1], new_name]))


def index_of(nodes: list[dict[str, Any]], node_id: str) -> int | None:
    for node in nodes:
        if node.get("id") == node_id:
            index = node.get("index")
            return index if isinstance(index, int) else None
    return None
