"""Graph edits on YAML text: each returns the new text, every other comment, key order and
quoting kept (thin wrappers over ``EditorDocument``'s methods; keep a document per open
pipeline to skip the parse).

CONTRACT:
- ``insert_step(text, step_type, *, parent="", index=None, name=None) -> EditResult(text,
  step_id)`` — a minimal valid step of that type (``editor/templates.py``) with a unique name
  (``claude_2``) unless ``name`` is given; ``index`` None appends.
- ``delete_step(text, step_id)``, ``move_step(text, step_id, new_index)`` (within its
  siblings), ``set_field(text, step_id, path, value)`` (``None`` deletes the key; multi-line
  text becomes a literal block ``|``), ``rename_step(text, step_id, new_name)`` (references
  follow), ``connect(text, source_id, target_id)`` (a ``previous_response`` prompt part)
  ``-> str``.
- ``InputError`` with a clear message for malformed YAML, an unknown step id, a wrong index,
  an unknown step type or a document without ``workflow.steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elexirion_app.editor.document import EditorDocument


@dataclass(frozen=True)
class EditResult:
    text: str
    step_id: str


def insert_step(
    text: str,
    step_type: str,
    *,
    parent: str = "",
    index: int | None = None,
    name: str | None = None,
) -> EditResult:
    doc = EditorDocument.parse(text)
    step_id = doc.insert_step(step_type, parent=parent, index=index, name=name)
    return EditResult(doc.text, step_id)


def delete_step(text: str, step_id: str) -> str:
    doc = EditorDocument.parse(text)
    doc.delete_step(step_id)
    return doc.text


def move_step(text: str, step_id: str, new_index: int) -> str:
    doc = EditorDocument.parse(text)
    doc.move_step(step_id, new_index)
    return doc.text


def set_field(text: str, step_id: str, path: tuple[str | int, ...], value: Any) -> str:
    doc = EditorDocument.parse(text)
    doc.set_field(step_id, path, value)
    return doc.text


def rename_step(text: str, step_id: str, new_name: str) -> str:
    doc = EditorDocument.parse(text)
    doc.rename_step(step_id, new_name)
    return doc.text


def connect(text: str, source_id: str, target_id: str) -> str:
    doc = EditorDocument.parse(text)
    doc.connect(source_id, target_id)
    return doc.text
