"""Validation grows linearly with distinct steps (attacker finding 6): ``ctx.later`` (every
name still to come) was a dict rebuilt for each step. Counted in name entries copied into the
context, not in time."""

from __future__ import annotations

import pytest

from elexirion_app.pipelines.checks import context
from elexirion_app.pipelines.loader import load_text
from elexirion_app.pipelines.validate import validate_document


def _steps(n: int) -> str:
    return "workflow:\n  name: w\n  steps:\n" + "".join(
        f"    - name: s{i}\n      type: claude\n      prompt:\n"
        f'        - type: static\n          content: "step {i}"\n'
        for i in range(n)
    )


def test_validation_is_linear_in_distinct_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = 0

    def counting(self: object, name: str, value: object) -> None:
        nonlocal entries
        if name in ("earlier", "later"):  # a dict is copied; a view costs one assignment
            entries += len(value) if isinstance(value, dict) else 1
        object.__setattr__(self, name, value)

    monkeypatch.setattr(context.Ctx, "__setattr__", counting)

    def work(n: int) -> int:
        nonlocal entries
        entries = 0
        validate_document(load_text(_steps(n)))
        return entries

    small, large = work(300), work(1200)
    assert large < 6 * small, f"4x the steps copied {large / small:.1f}x the name entries"


def test_a_reference_to_a_later_step_still_names_its_line() -> None:
    text = (
        "workflow:\n  name: w\n  steps:\n"
        "    - name: a\n      type: claude\n      prompt:\n"
        "        - {type: previous_response, step: b}\n"
        "    - name: b\n      type: claude\n      prompt: [{type: static, content: x}]\n"
    )
    messages = [p.message for p in validate_document(load_text(text))]
    assert any("runs later (line 8)" in m for m in messages), messages
