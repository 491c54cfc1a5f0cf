from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elexirion_app.core.errors import InputError
from elexirion_app.editor import workbench as wb

TEXT = """\
# keep me
workflow:
  name: demo
  steps:
    - name: first  # first step
      type: claude
      prompt:
        - type: static
          content: "hi"
    - name: loop
      type: for_loop
      iterator: item
      data_source: [a, b]
      steps:
        - name: inner
          type: claude
          prompt:
            - type: static
              content: "{{loop.item}}"
"""


def _steps(text: str) -> list[str]:
    return [s["name"] for s in yaml.safe_load(text)["workflow"]["steps"]]


def test_analyse_gives_graph_problems_and_pinned_positions(tmp_path: Path) -> None:
    shown = wb.analyse(TEXT, tmp_path, {"first": [5, 6]})
    assert shown.errors == 0 and shown.problems == []
    assert shown.nodes is not None and shown.edges is not None
    by_id = {n["id"]: n for n in shown.nodes}
    assert {"first", "loop", "loop/inner"} <= set(by_id)
    assert (by_id["first"]["x"], by_id["first"]["y"]) == (5, 6)
    assert shown.step("loop/inner") == {
        "name": "inner",
        "type": "claude",
        "prompt": [{"type": "static", "content": "{{loop.item}}"}],
    }


def test_analyse_of_broken_yaml_keeps_no_graph_and_reports_the_line(tmp_path: Path) -> None:
    shown = wb.analyse("workflow:\n  name: [x\n", tmp_path, {})
    assert shown.nodes is None and shown.errors == 1 and shown.problems[0]["line"] >= 1


def test_insert_after_the_selected_step_or_inside_a_selected_loop() -> None:
    after = wb.insert_after(TEXT, "gemini", "first")
    assert _steps(after.text) == ["first", after.select, "loop"]
    inside = wb.insert_after(TEXT, "claude", "loop")
    loop = yaml.safe_load(inside.text)["workflow"]["steps"][1]
    assert [s["name"] for s in loop["steps"]][-1] == inside.select.split("/")[-1]
    assert inside.select.startswith("loop/")
    at_end = wb.insert_after(TEXT, "claude", "")
    assert _steps(at_end.text)[-1] == at_end.select
    for edited in (after, inside, at_end):
        assert "# keep me" in edited.text and "# first step" in edited.text


def test_edits_keep_comments_and_select_what_they_touched() -> None:
    moved = wb.move(TEXT, "loop", 0)
    assert _steps(moved.text) == ["loop", "first"] and moved.select == "loop"
    renamed = wb.rename(TEXT, "first", "opening")
    assert _steps(renamed.text) == ["opening", "loop"] and renamed.select == "opening"
    deleted = wb.delete(TEXT, "loop", "loop/inner")
    assert _steps(deleted.text) == ["first"] and deleted.select == ""
    kept = wb.delete(TEXT, "loop", "first")
    assert kept.select is None
    for edited in (moved, renamed, deleted):
        assert "# keep me" in edited.text and "# first step" in edited.text


def test_prompt_parts_are_added_and_removed_as_whole_items() -> None:
    added = wb.add_part(TEXT, "first", "previous_response")
    prompt = yaml.safe_load(added.text)["workflow"]["steps"][0]["prompt"]
    assert prompt == [
        {"type": "static", "content": "hi"},
        {"type": "previous_response", "step": ""},
    ]
    removed = wb.remove_part(added.text, "first", 0)
    prompt = yaml.safe_load(removed.text)["workflow"]["steps"][0]["prompt"]
    assert prompt == [{"type": "previous_response", "step": ""}]
    value = wb.set_value(TEXT, "first", ("claude_options", "max_turns"), 3)
    assert yaml.safe_load(value.text)["workflow"]["steps"][0]["claude_options"] == {"max_turns": 3}


def test_a_failed_edit_changes_nothing_and_the_next_edit_still_works() -> None:
    with pytest.raises(InputError):
        wb.move(TEXT, "no_such_step", 0)
    with pytest.raises(InputError):
        wb.insert_after(TEXT, "not_a_type", "")
    with pytest.raises(InputError):
        wb.rename(TEXT, "first", "")
    assert _steps(wb.move(TEXT, "loop", 0).text) == ["loop", "first"]


def test_the_kept_document_gives_the_same_text_as_a_fresh_parse() -> None:
    from elexirion_app.editor import edits

    once = wb.insert_after(TEXT, "claude", "").text
    twice = wb.move(once, "loop", 0).text  # reuses the document kept for ``once``
    fresh = edits.move_step(edits.insert_step(TEXT, "claude").text, "loop", 0)
    assert twice == fresh


def test_index_of() -> None:
    nodes = [{"id": "a", "index": 0}, {"id": "b", "index": 1}]
    assert wb.index_of(nodes, "b") == 1 and wb.index_of(nodes, "zz") is None
