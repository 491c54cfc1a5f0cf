"""An open pipeline in the editor: its YAML text, its data, and edits that keep the text yours.

CONTRACT:
- ``EditorDocument.parse(text)`` — the loader's safe reading (``yaml.safe_load`` semantics,
  size, alias and depth caps, no Python tags, no duplicate keys; ``editor/safeload.py``);
  ``InputError`` with ``line N: ...`` for malformed YAML, an empty file or a top level that
  is not a map. A leading BOM is dropped.
- ``.text`` — the current YAML text. An untouched document gives back exactly what was parsed;
  after edits, only the lines of what changed differ (see ``editor/splice.py``: scalars are
  replaced in place, list items move as whole lines with their comments, the rest is written
  by ruamel.yaml's round-trip emitter).
- ``.data`` — plain data equal to ``yaml.safe_load(.text)``; shared, treat it as read-only.
- Edits mutate the document (keep one per open pipeline: an edit skips the loader's parse,
  reuses the data of every step it did not touch, and — for the ``KEPT_TREES`` documents
  edited last — the node tree of the previous edit):
  ``insert_step(step_type, *, parent="", index=None, name=None) -> new step id``,
  ``delete_step(step_id)``, ``move_step(step_id, new_index)``,
  ``set_field(step_id, path, value)`` (``None`` deletes the key; multi-line text becomes a
  literal block ``|``), ``rename_step(step_id, new_name)`` (references follow),
  ``connect(source_id, target_id)``. All raise ``InputError`` for an unknown step id, a wrong
  index, an unknown step type, or a document without ``workflow.steps``; a failed edit leaves
  the document as it was. One document takes one edit at a time (the web layer serialises
  the edits of a pipeline).
- ``.dump()`` — the whole document written by ruamel.yaml's round-trip emitter (comments and
  key order kept; indentation normalised to the file's most common style).
- ``wrap_bare(text) -> (text, warning | None)`` — a file without the ``workflow:`` root but with
  ``name``/``steps`` at the top (what pipeline_ex's genesis writes) indented under
  ``workflow:`` (comments kept) plus a warning; anything else (including YAML that does not
  parse: the validator reports it) is returned unchanged with ``None``.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

from elexirion_app.core.errors import InputError, PipelineValidationError
from elexirion_app.editor import ops, safeload, splice
from elexirion_app.editor.primitives import Change
from elexirion_app.editor.tree import Path, walk_kept
from elexirion_app.editor.yamltext import (
    SnippetError,
    Source,
    Style,
    is_blank,
    is_comment,
    newline_of,
    no_gc,
    rt_dump,
    rt_load,
    split_lines,
    style_of,
)
from elexirion_app.pipelines.loader import MAX_FILE_BYTES

BARE_WARNING = (
    "this file has no 'workflow:' root (pipeline_ex's genesis writes name and steps at the "
    "top): it was wrapped under 'workflow:'"
)


def _safe_parse(text: object) -> Any:
    if not isinstance(text, str):
        raise InputError("the pipeline must be YAML text")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise InputError(f"the pipeline is larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
    try:
        data = safeload.load(text, "<editor>")
    except PipelineValidationError as exc:
        raise InputError(_message(exc)) from exc
    return data


def _message(exc: PipelineValidationError) -> str:
    if not exc.problems:
        return "the YAML could not be read"
    p = exc.problems[0]
    where = f"line {p.line}: " if p.line is not None else ""
    return f"{where}{p.message}" + (f" ({p.hint})" if p.hint else "")


class EditorDocument:
    """See the module docstring."""

    def __init__(self, text: str, data: dict[str, Any]) -> None:
        self._text = text
        self._data = data
        self._style: Style | None = None
        self._source: Source | None = None  # kept for the documents edited last only

    @classmethod
    def parse(cls, text: str) -> EditorDocument:
        if isinstance(text, str) and text.startswith("\ufeff"):
            text = text[1:]
        data = _safe_parse(text)
        if not isinstance(data, dict):
            kind = "list" if isinstance(data, list) else type(data).__name__
            raise InputError(f"line 1: the top level is a {kind}, not a map with 'workflow:'")
        return cls(text, data)

    @property
    def text(self) -> str:
        return self._text

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    def dump(self) -> str:
        """The whole document through ruamel.yaml's round-trip emitter."""
        return rt_dump(rt_load(self.text), self._doc_style())

    # --- edits ----------------------------------------------------------------------------

    def insert_step(
        self,
        step_type: str,
        *,
        parent: str = "",
        index: int | None = None,
        name: str | None = None,
    ) -> str:
        """Add a step from its type's template; returns the new step's id."""
        changes, path = ops.insert(self._data, step_type, parent, index, name)
        self._edit(changes)
        return self._id_at(path)

    def delete_step(self, step_id: str) -> None:
        self._edit(ops.delete(self._data, step_id))

    def move_step(self, step_id: str, new_index: int) -> None:
        self._edit(ops.move(self._data, step_id, new_index))

    def set_field(self, step_id: str, path: tuple[str | int, ...], value: Any) -> None:
        self._edit(ops.set_field(self._data, step_id, path, value))

    def rename_step(self, step_id: str, new_name: str) -> None:
        self._edit(ops.rename(self._data, step_id, new_name))

    def connect(self, source_id: str, target_id: str) -> None:
        self._edit(ops.connect(self._data, source_id, target_id))

    def _edit(self, changes: list[Change]) -> None:
        if not changes:
            return
        # The collector is paused while node trees are built (they are not garbage). The new
        # text's tree is kept for the next edit, by the few documents edited last only.
        with no_gc():
            source = self._source or Source(self._text)
            if self._style is None:
                self._style = style_of(source.root)
            text, data, node = splice.write(source, self._data, changes, self._style)
            self._source = Source(text, node)
            del source
        self._text, self._data = text, data
        _KEPT.keep(self)

    def _drop_tree(self) -> None:
        self._source = None

    def _doc_style(self) -> Style:
        if self._style is None:
            with no_gc():
                self._style = style_of(Source(self._text).root)
        return self._style

    def _id_at(self, path: Path) -> str:
        for ref in walk_kept(self._data):
            if ref.path == path:
                return ref.id
        raise InputError("the new step could not be found after the edit")  # pragma: no cover


class _KeptTrees:
    """The node trees (~1.5 MB and ~16k objects for 200 steps) of the ``size`` documents edited
    last: an edit of one of them skips composing its text again; older ones are dropped."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._docs: OrderedDict[int, weakref.ref[EditorDocument]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, doc: EditorDocument) -> None:
        dropped: list[EditorDocument] = []
        with self._lock:
            self._docs.pop(id(doc), None)
            self._docs[id(doc)] = weakref.ref(doc)
            while len(self._docs) > self._size:
                _, ref = self._docs.popitem(last=False)
                old = ref()
                if old is not None:
                    dropped.append(old)
        for old in dropped:
            old._drop_tree()


KEPT_TREES = 8
_KEPT = _KeptTrees(KEPT_TREES)


# --- bare files -------------------------------------------------------------------------


def wrap_bare(text: str) -> tuple[str, str | None]:
    """See the module docstring."""
    if isinstance(text, str) and text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = _safe_parse(text)
    except InputError:
        return text, None
    if not isinstance(data, dict) or "workflow" in data or not ({"name", "steps"} & set(data)):
        return text, None
    lines = split_lines(text)
    top = 0
    while top < len(lines) and (
        is_blank(lines[top]) or is_comment(lines[top]) or lines[top].startswith("%")
    ):
        top += 1
    if top < len(lines) and lines[top].rstrip() == "---":
        top += 1
    nl = newline_of(text)
    body = [ln if is_blank(ln) or ln.rstrip() == "..." else "  " + ln for ln in lines[top:]]
    wrapped = "".join(lines[:top]) + "workflow:" + nl + "".join(body)
    expected = {"workflow": data}
    if _reads_as(wrapped, expected):
        return wrapped, BARE_WARNING
    try:
        rewritten = rt_dump({"workflow": rt_load(text)}, style_of(None))
    except SnippetError as exc:
        raise InputError(f"the file could not be wrapped under 'workflow:': {exc}") from exc
    if not _reads_as(rewritten, expected):
        raise InputError("the file could not be wrapped under 'workflow:'")
    return rewritten, BARE_WARNING


def _reads_as(text: str, expected: Any) -> bool:
    try:
        return bool(_safe_parse(text) == expected)
    except InputError:
        return False
