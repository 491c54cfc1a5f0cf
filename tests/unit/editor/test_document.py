"""EditorDocument: safe parsing, text and data, ruamel round trip, bare files, refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from elexirion_app.core.errors import InputError
from elexirion_app.editor.document import BARE_WARNING, EditorDocument, wrap_bare
from elexirion_app.pipelines.loader import MAX_FILE_BYTES
from tests.unit.editor.helpers import comments, pipeline_files


def test_every_pipeline_file_round_trips_with_equal_data_and_every_comment() -> None:
    failures: dict[str, str] = {}
    for path in pipeline_files():
        text = path.read_text(encoding="utf-8")
        doc = EditorDocument.parse(text)
        expected = yaml.safe_load(text)
        if doc.text != text:
            failures[path.name] = "text changed without an edit"
        elif doc.data != expected:
            failures[path.name] = "data differs from yaml.safe_load"
        else:
            dumped = doc.dump()
            if yaml.safe_load(dumped) != expected:
                failures[path.name] = "ruamel's dump changes the data"
            elif comments(dumped) != comments(text):
                failures[path.name] = f"comments lost: {comments(text) - comments(dumped)}"
    assert failures == {}


def test_the_dump_of_a_file_in_one_style_is_byte_identical() -> None:
    text = (
        "# a pipeline\n"
        "workflow:\n"
        "  name: demo  # its name\n"
        "  steps:\n"
        "    - name: a\n"
        '      type: "claude"\n'
        "      prompt:\n"
        "        - type: static\n"
        "          content: |\n"
        "            Hello\n"
        "            there\n"
    )
    doc = EditorDocument.parse(text)
    assert doc.dump() == text
    assert doc.text == text


def test_malformed_yaml_is_an_input_error_naming_the_line() -> None:
    text = "workflow:\n  name: x\n  steps:\n    - name: a\n      type: [claude\n"
    with pytest.raises(InputError) as err:
        EditorDocument.parse(text)
    assert "line " in err.value.user_message
    assert "Traceback" not in err.value.user_message
    with pytest.raises(InputError, match=r"line 3: .*duplicate key 'name'"):
        EditorDocument.parse("workflow:\n  name: a\n  name: b\n")


def test_the_top_level_must_be_a_map_and_the_file_not_empty() -> None:
    with pytest.raises(InputError, match="line 1: the top level is a list"):
        EditorDocument.parse("- a\n- b\n")
    with pytest.raises(InputError, match="empty"):
        EditorDocument.parse("")
    with pytest.raises(InputError, match="YAML text"):
        EditorDocument.parse(b"workflow: {}")  # type: ignore[arg-type]


def test_size_alias_bombs_and_python_tags_are_refused() -> None:
    with pytest.raises(InputError, match="larger than 2 MB"):
        EditorDocument.parse("a: " + "x" * (MAX_FILE_BYTES + 1))
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    with pytest.raises(InputError, match="alias"):
        EditorDocument.parse("\n".join(bomb) + "\n")
    with pytest.raises(InputError, match="Python YAML tag"):
        EditorDocument.parse("workflow: !!python/object:os.system {}\n")


def test_a_leading_bom_is_dropped() -> None:
    doc = EditorDocument.parse("\ufeffworkflow:\n  name: x\n  steps: []\n")
    assert doc.text.startswith("workflow:")
    assert doc.data == {"workflow": {"name": "x", "steps": []}}


BARE = """# written by pipeline_ex's genesis
name: generated   # the name
description: |
  Two lines
  of text
steps:
- name: first
  type: claude
  prompt:
    - type: static   # inline
      content: "hi"
# between
- name: second
  type: claude
  prompt:
    - type: previous_response
      step: first
"""


def test_wrap_bare_indents_a_genesis_file_under_workflow_keeping_comments() -> None:
    wrapped, warning = wrap_bare(BARE)
    assert warning == BARE_WARNING
    assert yaml.safe_load(wrapped) == {"workflow": yaml.safe_load(BARE)}
    assert comments(wrapped) == comments(BARE)
    assert wrapped.startswith("# written by pipeline_ex's genesis\nworkflow:\n  name: generated")
    assert EditorDocument.parse(wrapped).data["workflow"]["steps"][1]["name"] == "second"


def test_wrap_bare_leaves_other_texts_alone() -> None:
    normal = "workflow:\n  name: x\n  steps: []\n"
    assert wrap_bare(normal) == (normal, None)
    assert wrap_bare("just: data\n") == ("just: data\n", None)
    assert wrap_bare("steps: [unclosed\n") == ("steps: [unclosed\n", None)
    assert wrap_bare("- a\n") == ("- a\n", None)


def test_wrap_bare_keeps_a_document_start_marker_on_top() -> None:
    text = "%YAML 1.1\n---\nname: x\nsteps: []\n"
    wrapped, warning = wrap_bare(text)
    assert warning is not None
    assert wrapped == "%YAML 1.1\n---\nworkflow:\n  name: x\n  steps: []\n"


def test_the_editor_package_never_loads_reflex_or_dspy() -> None:
    code = (
        "import sys, elexirion_app.editor.edits, elexirion_app.editor.graph, "
        "elexirion_app.editor.diff\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('reflex', 'dspy')]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"
