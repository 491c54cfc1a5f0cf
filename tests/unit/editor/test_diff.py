"""line_diff and diff_stats between two versions of a pipeline's YAML."""

from __future__ import annotations

from elexirion_app.editor.diff import DiffLine, diff_stats, line_diff

OLD = "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\n"


def test_equal_texts_have_no_diff() -> None:
    assert line_diff(OLD, OLD) == []
    assert diff_stats(OLD, OLD) == (0, 0)


def test_a_changed_line_gives_a_hunk_with_context_and_both_numbers() -> None:
    new = OLD.replace("e: 5", "e: 50")
    rows = line_diff(OLD, new, context=1)
    assert rows == [
        DiffLine("@", "@@ -4,3 +4,3 @@", None, None),
        DiffLine(" ", "d: 4", 4, 4),
        DiffLine("-", "e: 5", 5, None),
        DiffLine("+", "e: 50", None, 5),
        DiffLine(" ", "f: 6", 6, 6),
    ]
    assert diff_stats(OLD, new) == (1, 1)


def test_added_and_removed_lines_are_numbered_in_their_own_version() -> None:
    new = "a: 1\nx: 0\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\nh: 8\n"
    rows = line_diff(OLD, new, context=0)
    assert [(r.kind, r.text, r.old_no, r.new_no) for r in rows if r.kind != "@"] == [
        ("+", "x: 0", None, 2),
        ("-", "g: 7", 7, None),
    ]
    assert [r.text for r in rows if r.kind == "@"] == ["@@ -1,0 +2 @@", "@@ -7 +7,0 @@"]
    assert diff_stats(OLD, new) == (1, 1)


def test_line_breaks_and_a_missing_final_break_are_not_part_of_the_text() -> None:
    rows = line_diff("a: 1\r\nb: 2", "a: 1\r\nb: 3\r\n")
    assert [(r.kind, r.text) for r in rows] == [
        ("@", "@@ -1,2 +1,2 @@"),
        (" ", "a: 1"),
        ("-", "b: 2"),
        ("+", "b: 3"),
    ]
    assert diff_stats("", "x\ny\n") == (2, 0)
