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


def test_a_version_over_the_line_cap_is_refused_with_both_sizes() -> None:
    import pytest

    from elexirion_app.core.errors import InputError
    from elexirion_app.editor.diff import MAX_DIFF_LINES

    big = "x: 1\n" * (MAX_DIFF_LINES + 1)
    with pytest.raises(InputError, match=r"too large to diff, 5,001 lines vs 1"):
        line_diff(big, "a: 1\n")
    with pytest.raises(InputError):
        diff_stats("a: 1\n", big)


def test_difflib_sees_only_the_lines_between_the_common_head_and_tail(monkeypatch) -> None:
    """Thousands of repeated lines cost difflib O(n²) and more: the shared head and tail
    are matched in linear time first (finding 2)."""
    import difflib

    seen: list[tuple[int, int]] = []
    real = difflib.SequenceMatcher

    def spy(junk, a, b, autojunk=True):  # type: ignore[no-untyped-def]
        seen.append((len(a), len(b)))
        return real(junk, a, b, autojunk=autojunk)

    monkeypatch.setattr(difflib, "SequenceMatcher", spy)
    old, new = "- a\n" * 4000, "- b\n" + "- a\n" * 4000
    assert diff_stats(old, new) == (1, 0)
    assert line_diff(old, new, context=1) == [
        DiffLine("@", "@@ -1 +1,2 @@", None, None),
        DiffLine("+", "- b", None, 1),
        DiffLine(" ", "- a", 1, 2),
    ]
    assert all(a + b <= 2 for a, b in seen), seen


def test_the_rows_rebuild_the_new_text_from_the_old() -> None:
    import random

    rng = random.Random(7)
    for _ in range(200):
        old = [rng.choice("abc") for _ in range(rng.randint(0, 12))]
        new = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        rows = line_diff("\n".join(old), "\n".join(new), context=MAX)
        kept = [r.text for r in rows if r.kind in (" ", "+")]
        gone = [r.text for r in rows if r.kind in (" ", "-")]
        assert (kept, gone) == (new, old) or (old == new and rows == [])
        added, removed = diff_stats("\n".join(old), "\n".join(new))
        assert (added, removed) == (
            sum(r.kind == "+" for r in rows),
            sum(r.kind == "-" for r in rows),
        )


MAX = 1000
