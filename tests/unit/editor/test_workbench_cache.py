"""The editor's document cache (attacker findings 11 and 12): no process-wide lock held
while a document is parsed or edited, and a budget in characters, in all and per user."""

from __future__ import annotations

import threading

import pytest

from elexirion_app.editor import workbench as wb
from elexirion_app.editor.document import EditorDocument


def _text(name: str, pad: int = 0) -> str:
    return (
        f"# {'x' * pad}\nworkflow:\n  name: {name}\n  steps:\n"
        "    - name: first\n      type: claude\n      prompt: [{type: static, content: hi}]\n"
    )


def test_a_slow_parse_of_one_text_does_not_hold_back_an_edit_of_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = wb._Documents(8, 1_000_000, 1_000_000)
    slow, quick = _text("slow"), _text("quick")
    entered, release = threading.Event(), threading.Event()
    real = EditorDocument.parse

    def parse(text: str) -> EditorDocument:
        if text == slow:
            entered.set()
            release.wait(10)
        return real(text)

    monkeypatch.setattr(EditorDocument, "parse", staticmethod(parse))
    other = threading.Thread(target=docs.edit, args=(slow, lambda d: None))
    other.start()
    try:
        assert entered.wait(5)
        done: list[str] = []
        runner = threading.Thread(target=lambda: done.append(docs.edit(quick, lambda d: 1)[0]))
        runner.start()
        runner.join(5)
        assert done == [quick], "an edit of another text waited for the slow parse"
    finally:
        release.set()
        other.join(10)


def test_the_cache_keeps_at_most_its_budget_of_characters_in_all_and_per_user() -> None:
    docs = wb._Documents(32, 30_000, 12_000)
    for user in (1, 2, 3):
        for i in range(6):
            wb.as_user(user, docs.edit, _text(f"u{user}d{i}", 4000), lambda d: None)
            assert docs.chars(user) <= 12_000
            assert docs.chars() <= 30_000
    assert docs.chars(3) > 0  # the last user's recent documents are kept
    huge = _text("huge", 20_000)
    wb.as_user(4, docs.edit, huge, lambda d: None)  # larger than a share: not kept
    assert docs.chars(4) == 0


def test_an_edit_reuses_the_kept_document_of_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = wb._Documents(8, 1_000_000, 1_000_000)
    parsed: list[str] = []
    real = EditorDocument.parse
    monkeypatch.setattr(
        EditorDocument, "parse", staticmethod(lambda t: parsed.append(t) or real(t))
    )
    first, _ = docs.edit(_text("a"), lambda d: d.rename_step("first", "second"))
    docs.edit(first, lambda d: None)
    assert len(parsed) == 1
