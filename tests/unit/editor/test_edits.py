"""The graph edits on one hand-written file: exact text, comments, references, refusals."""

from __future__ import annotations

import pytest
import yaml

from elexirion_app.core.errors import InputError
from elexirion_app.editor import edits
from elexirion_app.editor.diff import diff_stats
from elexirion_app.editor.document import EditorDocument
from elexirion_app.editor.templates import STEP_TYPES
from tests.unit.editor.helpers import comments

TEXT = """\
# the pipeline
workflow:
  name: demo  # its name
  steps:
    # reads the code
    - name: analyze
      type: "claude"
      claude_options:
        model: haiku  # cheap
      prompt:
        - type: static
          content: 'Look at the code'

    # sums it up
    - name: summary
      type: claude
      prompt:
        - type: previous_response
          step: analyze
        - type: static
          content: |
            Use {{steps.analyze.text}} and {{analyze.result}},
            not {{steps.analyzer.text}}; analyze this.
      # retired: model: opus

    - name: each
      type: for_loop
      iterator: item
      data_source: previous_response:summary
      condition: "analyze.text contains 'x'"
      steps:
        - name: inner
          type: claude
          prompt:
            - type: static
              content: "{{loop.item}} {{previous_response:analyze}}"
"""


def test_insert_writes_only_the_new_step_in_the_lists_style() -> None:
    result = edits.insert_step(TEXT, "claude", index=1)
    assert result.step_id == "claude_1"
    assert result.text == TEXT.replace(
        "\n    # sums it up\n",
        "\n    - name: claude_1\n      type: claude\n      prompt:\n"
        "        - type: static\n          content: Describe what this step should do.\n"
        "\n    # sums it up\n",
    )
    nested = edits.insert_step(TEXT, "set_variable", parent="each", index=0, name="first")
    assert nested.step_id == "each/first"
    assert "      steps:\n        - name: first\n          type: set_variable\n" in nested.text
    assert diff_stats(TEXT, nested.text)[1] == 0


def test_every_step_type_inserts_a_step_that_reads_back() -> None:
    for step_type in STEP_TYPES:
        result = edits.insert_step(TEXT, step_type)
        data = yaml.safe_load(result.text)
        assert data["workflow"]["steps"][-1]["type"] == step_type
        assert data["workflow"]["steps"][-1]["name"] == result.step_id
        assert comments(result.text) == comments(TEXT)


def test_unique_names_count_every_step_of_the_workflow() -> None:
    doc = EditorDocument.parse(TEXT)
    assert doc.insert_step("claude") == "claude_1"
    assert doc.insert_step("claude", parent="each") == "each/claude_2"
    assert doc.insert_step("for_loop") == "for_loop_1"
    assert [s["name"] for s in doc.data["workflow"]["steps"][-1]["steps"]] == ["for_loop_1_step_1"]


def test_delete_removes_the_step_with_its_own_comments_only() -> None:
    text = edits.delete_step(TEXT, "summary")
    assert "# sums it up" not in text and "# retired" not in text
    assert comments(TEXT) - comments(text) == comments("# sums it up\n# retired: model: opus\n")
    assert diff_stats(TEXT, text)[0] == 0
    assert [s["name"] for s in yaml.safe_load(text)["workflow"]["steps"]] == ["analyze", "each"]
    inner_gone = edits.delete_step(TEXT, "each/inner")
    assert yaml.safe_load(inner_gone)["workflow"]["steps"][2]["steps"] == []


def test_move_carries_comments_and_keeps_blank_lines_in_place() -> None:
    text = edits.move_step(TEXT, "each", 0)
    assert [s["name"] for s in yaml.safe_load(text)["workflow"]["steps"]] == [
        "each",
        "analyze",
        "summary",
    ]
    assert comments(text) == comments(TEXT)
    assert "  steps:\n    - name: each\n" in text
    assert "\n\n    # reads the code\n    - name: analyze\n" in text
    back = edits.move_step(edits.move_step(TEXT, "analyze", 2), "analyze", 0)
    assert yaml.safe_load(back) == yaml.safe_load(TEXT)
    assert edits.move_step(TEXT, "summary", 1) == TEXT


def test_set_field_replaces_a_scalar_in_place_keeping_its_comment_and_quotes() -> None:
    text = edits.set_field(TEXT, "analyze", ("claude_options", "model"), "opus")
    assert "        model: opus  # cheap\n" in text
    assert diff_stats(TEXT, text) == (1, 1)
    quoted = edits.set_field(TEXT, "analyze", ("prompt", 0, "content"), "It's new")
    assert "          content: 'It''s new'\n" in quoted
    assert edits.set_field(TEXT, "analyze", ("type",), "gemini").count('type: "gemini"') == 1


def test_set_field_writes_multi_line_text_as_a_literal_block() -> None:
    text = edits.set_field(TEXT, "analyze", ("prompt", 0, "content"), "one\ntwo\n")
    assert "          content: |\n            one\n            two\n" in text
    data = yaml.safe_load(text)
    assert data["workflow"]["steps"][0]["prompt"][0]["content"] == "one\ntwo\n"
    assert comments(text) == comments(TEXT)


def test_set_field_adds_nested_keys_deletes_keys_and_quotes_what_yaml_would_misread() -> None:
    text = edits.set_field(TEXT, "summary", ("claude_options", "max_turns"), 3)
    assert yaml.safe_load(text)["workflow"]["steps"][1]["claude_options"] == {"max_turns": 3}
    assert comments(text) == comments(TEXT)
    assert diff_stats(TEXT, text) == (2, 0)  # written after the step's last line
    assert (
        "          content: |\n" in text and "      claude_options:\n        max_turns: 3\n" in text
    )
    gone = edits.set_field(TEXT, "analyze", ("claude_options",), None)
    assert "claude_options" not in yaml.safe_load(gone)["workflow"]["steps"][0]
    assert "# cheap" not in gone and comments(TEXT) - comments(gone) == comments("# cheap\n")
    assert diff_stats(TEXT, gone) == (0, 2)
    for tricky in ("yes", "12:30", "0777", "1_000", "~", "null", "3.5", "- x", "a: b", "#x"):
        out = edits.set_field(TEXT, "analyze", ("description",), tricky)
        assert yaml.safe_load(out)["workflow"]["steps"][0]["description"] == tricky
    value = {"list": [1, True, None, "x"], "map": {"a": 1.5}}
    out = edits.set_field(TEXT, "each", ("metadata",), value)
    assert yaml.safe_load(out)["workflow"]["steps"][2]["metadata"] == value
    assert edits.set_field(TEXT, "analyze", ("missing",), None) == TEXT
    assert edits.set_field(TEXT, "analyze", ("claude_options", "model"), "haiku") == TEXT


def test_set_field_on_list_items_appends_and_removes() -> None:
    part = {"type": "file", "path": "README.md"}
    text = edits.set_field(TEXT, "analyze", ("prompt", 1), part)
    assert yaml.safe_load(text)["workflow"]["steps"][0]["prompt"][1] == part
    removed = edits.set_field(text, "analyze", ("prompt", 0), None)
    assert yaml.safe_load(removed)["workflow"]["steps"][0]["prompt"] == [part]


def test_rename_rewrites_every_reference_and_nothing_else() -> None:
    text = edits.rename_step(TEXT, "analyze", "review")
    data = yaml.safe_load(text)
    steps = data["workflow"]["steps"]
    assert steps[0]["name"] == "review"
    assert steps[1]["prompt"][0]["step"] == "review"
    assert steps[1]["prompt"][1]["content"] == (
        "Use {{steps.review.text}} and {{review.result}},\n"
        "not {{steps.analyzer.text}}; analyze this.\n"
    )
    assert steps[2]["condition"] == "review.text contains 'x'"
    assert (
        steps[2]["steps"][0]["prompt"][0]["content"] == "{{loop.item}} {{previous_response:review}}"
    )
    assert comments(text) == comments(TEXT)
    source = edits.rename_step(TEXT, "summary", "recap")
    assert (
        yaml.safe_load(source)["workflow"]["steps"][2]["data_source"] == "previous_response:recap"
    )
    assert len(TEXT.splitlines()) == len(text.splitlines())


def test_connect_adds_a_previous_response_part_once() -> None:
    text = edits.connect(TEXT, "summary", "each/inner")
    prompt = yaml.safe_load(text)["workflow"]["steps"][2]["steps"][0]["prompt"]
    assert prompt[-1] == {"type": "previous_response", "step": "summary"}
    assert diff_stats(TEXT, text) == (2, 0)
    assert edits.connect(text, "summary", "each/inner") == text
    assert edits.connect(TEXT, "analyze", "summary") == TEXT
    with pytest.raises(InputError, match="no prompt list"):
        edits.connect(TEXT, "analyze", "each")
    with pytest.raises(InputError, match="its own result"):
        edits.connect(TEXT, "analyze", "analyze")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: edits.delete_step(TEXT, "analyse"), "no step 'analyse' .*did you mean 'analyze'"),
        (lambda: edits.move_step(TEXT, "analyze", 3), "index 3 is out of range .* 0 to 2"),
        (lambda: edits.insert_step(TEXT, "claude", index=-1), "out of range"),
        (lambda: edits.insert_step(TEXT, "cluade"), "unknown step type 'cluade'.*'claude'"),
        (lambda: edits.insert_step(TEXT, "claude", parent="analyze"), "only for_loop"),
        (lambda: edits.insert_step(TEXT, "claude", name="summary"), "already exists"),
        (lambda: edits.insert_step(TEXT, "claude", name="a b"), "not a usable step name"),
        (lambda: edits.rename_step(TEXT, "analyze", "summary"), "already exists"),
        (lambda: edits.rename_step(TEXT, "analyze", "9lives"), "not a usable step name"),
        (lambda: edits.set_field(TEXT, "analyze", ("type", "x"), 1), "not a map or a list"),
        (lambda: edits.set_field(TEXT, "analyze", (), 1), "name the field"),
        (lambda: edits.set_field(TEXT, "analyze", ("x",), object()), "cannot be written"),
        (lambda: edits.set_field(TEXT, "analyze", ("prompt", 5), "x"), "out of range"),
        (lambda: edits.delete_step("workflow:\n  name: x\n", "a"), "no workflow.steps"),
        (lambda: edits.insert_step("just: data\n", "claude"), "no workflow.steps"),
        (lambda: edits.insert_step("workflow: [\n", "claude"), "line 2"),
    ],
)
def test_edits_refuse_with_a_clear_message(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()  # type: ignore[operator]


def test_a_kept_document_takes_many_edits_and_a_failed_one_changes_nothing() -> None:
    doc = EditorDocument.parse(TEXT)
    new_id = doc.insert_step("gemini", index=0)
    doc.set_field(new_id, ("model",), "gemini-2.5-pro")
    doc.rename_step(new_id, "draft")
    doc.connect("draft", "summary")
    doc.move_step("draft", 3)
    before = doc.text
    with pytest.raises(InputError):
        doc.move_step("draft", 9)
    assert doc.text == before
    doc.delete_step("draft")
    assert yaml.safe_load(doc.text) == doc.data
    steps = doc.data["workflow"]["steps"]
    assert [s["name"] for s in steps] == ["analyze", "summary", "each"]
    assert steps[1]["prompt"][-1] == {"type": "previous_response", "step": "draft"}
    assert comments(doc.text) == comments(TEXT)


def test_tasks_of_a_parallel_step() -> None:
    text = "workflow:\n  name: p\n  steps:\n    - name: par\n      type: parallel_claude\n"
    text += (
        "      parallel_tasks:\n        - id: t1\n          prompt: [{type: static, content: x}]\n"
    )
    result = edits.insert_step(text, "claude", parent="par")
    assert result.step_id == "par/task_1"
    tasks = yaml.safe_load(result.text)["workflow"]["steps"][0]["parallel_tasks"]
    assert [t["id"] for t in tasks] == ["t1", "task_1"]
    renamed = edits.rename_step(result.text, "par/task_1", "t2")
    assert yaml.safe_load(renamed)["workflow"]["steps"][0]["parallel_tasks"][1]["id"] == "t2"
    with pytest.raises(InputError, match="Claude tasks"):
        edits.insert_step(text, "gemini", parent="par")


def test_an_edit_reuses_the_data_of_the_steps_it_did_not_touch() -> None:
    doc = EditorDocument.parse(TEXT)
    before = doc.data["workflow"]["steps"]
    doc.set_field("analyze", ("claude_options", "model"), "opus")
    after = doc.data["workflow"]["steps"]
    assert after[0] is not before[0] and after[0]["claude_options"]["model"] == "opus"
    assert after[1] is before[1] and after[2] is before[2]
    assert before[0]["claude_options"]["model"] == "haiku"  # the old data is not changed
    assert yaml.safe_load(doc.text) == doc.data


def test_list_items_set_through_set_field_move_as_lines() -> None:
    part = {"type": "file", "path": "README.md"}
    added = edits.set_field(TEXT, "summary", ("prompt", 2), part)
    assert diff_stats(TEXT, added) == (2, 0)
    assert "        - type: file\n          path: README.md\n" in added
    removed = edits.set_field(TEXT, "summary", ("prompt", 0), None)
    assert diff_stats(TEXT, removed) == (0, 2)
    assert yaml.safe_load(removed)["workflow"]["steps"][1]["prompt"][0]["type"] == "static"


def test_documents_edited_long_ago_still_edit_correctly() -> None:
    from elexirion_app.editor.document import KEPT_TREES

    docs = [EditorDocument.parse(TEXT) for _ in range(KEPT_TREES + 2)]
    for doc in docs:
        doc.set_field("analyze", ("claude_options", "model"), "opus")
    for doc in docs:  # the first ones lost their kept tree meanwhile
        doc.move_step("each", 0)
        assert yaml.safe_load(doc.text) == doc.data
        assert [s["name"] for s in doc.data["workflow"]["steps"]] == ["each", "analyze", "summary"]
