"""A run started from the editor (``pipeline_runs.run_for_user``, what the editor's Run button
awaits) over the user's cap fails with the budget message before its step calls the model;
the editor shows ``outcome.error`` as the run's error (issue 10: refusal in the editor)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from elexirion_app import config
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.services.accounts import auth
from elexirion_app.services.billing import budgets, ledger
from elexirion_app.services.runs import pipeline_runs
from tests.fakes import fake_anthropic
from tests.fakes.fake_anthropic import FakeAnthropic

ONE_STEP = """workflow:
  name: capped
  steps:
    - name: ask
      type: claude
      claude_options: {model: claude-sonnet-4-5, max_tokens: 1000}
      prompt: [{type: static, content: "say hi"}]
"""


@pytest.fixture
async def fake(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    config.get_settings.cache_clear()
    try:
        yield server
    finally:
        await server.close()
        config.get_settings.cache_clear()


def _user() -> int:
    with session_scope() as s:
        uid = auth.register(s, "editor@example.com", "password-1").id
    assert uid is not None
    return uid


async def _run(uid: int, tmp_path: Path) -> pipeline_runs.RunOutcome:
    path = tmp_path / "capped.yaml"
    path.write_text(ONE_STEP)
    return await pipeline_runs.run_for_user(uid, path, {})


async def test_an_editor_run_over_the_monthly_cap_fails_with_the_numbers(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    uid = _user()
    with get_engine().begin() as conn:
        budgets.set_budget(conn, uid, monthly_usd="0.01")
    ledger.record(
        ledger.Attempt(caller="chat", provider="claude", model="m", user_id=uid,
                       cost_usd=Decimal("0.005"))
    )  # fmt: skip
    outcome = await _run(uid, tmp_path)
    assert outcome.status == "failed"
    assert "your monthly cap is $0.0100" in (outcome.error or "")
    assert "$0.0050 spent" in (outcome.error or "")
    assert fake.requests == [] and outcome.cost == 0


async def test_within_the_cap_the_same_run_succeeds(fake: FakeAnthropic, tmp_path: Path) -> None:
    uid = _user()
    with get_engine().begin() as conn:
        budgets.set_budget(conn, uid, monthly_usd="1.00")
    fake.queue(fake_anthropic.text("hi", input=10, output=2))
    outcome = await _run(uid, tmp_path)
    assert outcome.status == "succeeded", outcome.error
    assert len(fake.requests) == 1 and outcome.cost > 0
