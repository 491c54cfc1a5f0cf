"""Random edit sequences on files in every layout: the text always reads back as the data,
steps land where asked, and comments are only ever lost with a deleted step."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elexirion_app.core.errors import InputError
from elexirion_app.editor.document import EditorDocument
from elexirion_app.editor.templates import STEP_TYPES
from tests.unit.editor.helpers import comments

INDENTED = """\
# header
workflow:
  name: demo
  steps:
    # about a
    - name: a   # first
      type: claude
      prompt:
        - type: static
          content: "hi"

    - name: b
      type: for_loop
      iterator: item
      data_source: previous_response:a
      steps:
        - name: b_inner
          type: claude
          prompt:
            - type: previous_response
              step: a
    # about c
    - name: c
      type: claude
      prompt:
        - type: static
          content: |
            Uses {{steps.a.text}}
"""

FLUSH = """\
workflow:
  name: flush
  steps:
  - name: a
    type: claude
    prompt:
    - type: static
      content: x
  # lead of b
  - name: b
    type: gemini
    prompt:
    - {type: previous_response, step: a}
"""

FLOW = """\
workflow:
  name: flow  # flow style lists
  steps: [{name: a, type: claude, prompt: [{type: static, content: x}]},
    {name: b, type: test_echo, value: 1}]
"""

ALIASES = """\
workflow:
  name: aliases
  defaults:
    claude_options: &opts {model: haiku}
  steps:
    - name: a
      type: claude
      claude_options: *opts
      prompt: [{type: static, content: x}]
    - name: b
      type: claude
      prompt: [{type: static, content: y}]
"""

LAYOUTS = {
    "indented": INDENTED,
    "crlf": INDENTED.replace("\n", "\r\n"),
    "open_end": INDENTED.rstrip("\n"),
    "flush": FLUSH,
    "flow": FLOW,
    "aliases": ALIASES,
}

_op = st.tuples(
    st.sampled_from(["insert", "insert_child", "delete", "move", "set", "rename", "connect"]),
    st.integers(0, 10),
    st.integers(0, 10),
    st.sampled_from(STEP_TYPES),
    st.sampled_from(["text", "multi\nline\n", 3, True, ["x", 1], {"k": "v"}, None, "yes"]),
)


def _names(doc: EditorDocument) -> list[str]:
    return [s["name"] for s in doc.data["workflow"]["steps"]]


def _apply(doc: EditorDocument, op: tuple[Any, ...], counter: list[int]) -> list[str]:
    """Apply one op; returns the expected top-level names afterwards."""
    kind, i, j, step_type, value = op
    names = _names(doc)
    n = len(names)
    if kind == "insert":
        counter[0] += 1
        name = f"new_{counter[0]}"
        doc.insert_step(step_type, index=i % (n + 1), name=name)
        return [*names[: i % (n + 1)], name, *names[i % (n + 1) :]]
    if kind == "insert_child" and "b" in names and _type(doc, "b") == "for_loop":
        doc.insert_step(step_type if step_type != "pipeline" else "claude", parent="b", index=0)
        return names
    if kind == "delete" and n > 1:
        doc.delete_step(names[i % n])
        return [x for k, x in enumerate(names) if k != i % n]
    if kind == "move":
        moved = list(names)
        moved.insert(j % n, moved.pop(i % n))
        doc.move_step(names[i % n], j % n)
        return moved
    if kind == "set":
        doc.set_field(names[i % n], ("description",), value)
        return names
    if kind == "rename":
        counter[0] += 1
        doc.rename_step(names[i % n], f"renamed_{counter[0]}")
        return [f"renamed_{counter[0]}" if k == i % n else x for k, x in enumerate(names)]
    if kind == "connect" and n > 1 and i % n != j % n:
        try:
            doc.connect(names[i % n], names[j % n])
        except InputError as exc:
            assert "no prompt list" in str(exc)
        return names
    return names


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, min_size=1, max_size=6))
def test_random_edits_keep_text_and_data_in_step(layout: str, ops: list[Any]) -> None:
    text = LAYOUTS[layout]
    doc = EditorDocument.parse(text)
    counter = [0]
    before = comments(text)
    deleted = False
    for op in ops:
        expected_names = _apply(doc, op, counter)
        deleted = deleted or op[0] == "delete"
        assert yaml.safe_load(doc.text) == doc.data
        assert _names(doc) == expected_names
        if "\r\n" in text:
            assert "\n" not in doc.text.replace("\r\n", "")
        now = comments(doc.text)
        assert not now - before  # never a comment that was not there
        if not deleted:
            assert now == before
    assert EditorDocument.parse(doc.text).data == doc.data


def _type(doc: EditorDocument, name: str) -> str:
    return next(str(s.get("type")) for s in doc.data["workflow"]["steps"] if s["name"] == name)
