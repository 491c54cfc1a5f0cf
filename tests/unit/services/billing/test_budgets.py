"""Budgets that are enforced (issue 10): reserve before a call, settle after; refusals with
the numbers in chat, a run, the API (402) and the CLI; concurrent calls cannot overshoot a cap
(SQLite and PostgreSQL); the 80% warning; stale reservations stop counting."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from elexirion_app import cli
from elexirion_app.core.errors import BudgetExceeded
from elexirion_app.db.engine import create_all, get_engine, session_scope
from elexirion_app.db.models import BudgetReservation, LLMCall, utcnow
from elexirion_app.pipelines.loader import load_text
from elexirion_app.providers.anthropic_provider import AnthropicProvider
from elexirion_app.services.accounts import auth
from elexirion_app.services.billing import budgets, ledger, meter
from elexirion_app.services.chat import chat
from elexirion_app.services.runs.run_records import run_recorded
from tests.fakes import fake_anthropic
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.support.scratch_pg import scratch_database

FAST = {"timeout_s": 2.0, "retry_base_delay_s": 0.01, "retry_max_delay_s": 0.02}
ONE_STEP = """
workflow:
  name: capped
  steps:
    - name: ask
      type: claude
      claude_options: {model: claude-sonnet-4-5, max_tokens: 1000}
      prompt: [{type: static, content: "say hi"}]
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _live(fake: FakeAnthropic) -> AnthropicProvider:
    return AnthropicProvider("k", base_url=fake.url, max_retries=0, **FAST)


def _user(email: str = "a@example.com") -> int:
    with session_scope() as s:
        uid = auth.register(s, email, "password-1").id
    assert uid is not None
    return uid


def _cap(user_id: int | None, monthly: str | None, per_run: str | None = None) -> None:
    with get_engine().begin() as conn:
        budgets.set_budget(conn, user_id, monthly_usd=monthly, per_run_usd=per_run)


def _spend(user_id: int, usd: str) -> None:
    ledger.record(
        ledger.Attempt(caller="chat", provider="claude", model="m", user_id=user_id,
                       cost_usd=Decimal(usd))
    )  # fmt: skip


def _open_reservations(engine: Engine | None = None) -> int:
    with Session(engine or get_engine()) as s:
        rows = s.exec(select(BudgetReservation)).all()
    return sum(1 for r in rows if r.settled_at is None)


# claude-sonnet-4-5, max_tokens 1000: the estimate is at least 1000 x $15e-6 = $0.015


async def test_a_call_over_the_monthly_cap_is_refused_before_anything_is_sent(
    db_url: str, fake: FakeAnthropic
) -> None:
    uid = _user()
    _cap(uid, "0.02")
    _spend(uid, "0.01")
    provider = meter.bind(_live(fake), caller="api", user_id=uid)
    request = budgets_request()
    with pytest.raises(BudgetExceeded) as err:
        [e async for e in provider.stream(request)]
    exc = err.value
    assert exc.scope == "monthly" and exc.cap == Decimal("0.02") and exc.spent == Decimal("0.01")
    assert exc.reserved == 0 and exc.estimate >= Decimal("0.015")
    assert "$0.0200" in exc.user_message and "$0.0100 spent" in exc.user_message
    assert fake.requests == [] and len(_rows()) == 1  # only the seeded spend
    assert _open_reservations() == 0


def budgets_request() -> object:
    from elexirion_app.core.types import LLMRequest

    return LLMRequest.from_prompt("hello", model="claude-sonnet-4-5", max_tokens=1000)


def _rows() -> list[LLMCall]:
    with Session(get_engine()) as s:
        return list(s.exec(select(LLMCall)).all())


async def test_a_call_within_the_cap_is_reserved_then_settled_at_its_actual_cost(
    db_url: str, fake: FakeAnthropic
) -> None:
    uid = _user()
    _cap(uid, "1.00")
    fake.queue(fake_anthropic.text("hi", input=100, output=10))
    provider = meter.bind(_live(fake), caller="api", user_id=uid)
    [e async for e in provider.stream(budgets_request())]  # type: ignore[arg-type]
    with Session(get_engine()) as s:
        [held] = s.exec(select(BudgetReservation)).all()
    assert held.settled_at is not None and held.amount_usd >= Decimal("0.015")
    with get_engine().connect() as conn:
        info = budgets.status(conn, uid)
    actual = 100 * 0.000003 + 10 * 0.000015
    assert info["spent_usd"] == pytest.approx(actual) and info["reserved_usd"] == 0


async def test_chat_shows_the_refusal_with_its_numbers(db_url: str, fake: FakeAnthropic) -> None:
    uid = _user()
    _cap(uid, "0.001")
    with session_scope() as s:
        turn = chat.start_turn(s, uid, None, "hello?")
    chunks = [c async for c in chat.stream_reply(uid, turn.assistant_message.id, _live(fake))]
    final = chunks[-1].final
    assert final is not None and final.status == "error"
    assert "Budget exceeded" in final.content and "$0.0010" in final.content
    assert fake.requests == [] and _rows() == []


async def test_a_run_over_its_per_run_cap_fails_with_the_budget_message(
    db_url: str, fake: FakeAnthropic, tmp_path: Path
) -> None:
    uid = _user()
    _cap(uid, None, per_run="0.001")
    outcome = await run_recorded(
        load_text(ONE_STEP),
        pipeline_yaml=ONE_STEP,
        provider_for=lambda _kind: _live(fake),
        user_id=uid,
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        heartbeat_s=0,
    )
    assert outcome.status == "failed" and "this run's cap is $0.0010" in (outcome.error or "")
    assert fake.requests == [] and outcome.cost == 0


async def test_the_api_answers_402_with_the_numbers() -> None:
    from elexirion_app.api.http import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/spend")
    async def spend() -> None:
        raise BudgetExceeded(
            scope="monthly", cap=Decimal("5"), spent=Decimal("4.9"), reserved=Decimal("0.05"),
            estimate=Decimal("0.2"),
        )  # fmt: skip

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/spend")
    assert r.status_code == 402
    body = r.json()["error"]
    assert body["code"] == "budget_exceeded" and "Budget exceeded" in body["message"]
    assert (body["cap_usd"], body["spent_usd"], body["reserved_usd"], body["estimate_usd"]) == (
        5.0, 4.9, 0.05, 0.2
    )  # fmt: skip


def test_the_cli_sets_and_shows_caps(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    uid = _user("ops@example.com")
    _spend(uid, "0.45")
    assert cli.main(["budget", "set", "--email", "ops@example.com", "--monthly-usd", "0.5"]) == 0
    assert cli.main(["budget", "set", "--global", "--monthly-usd", "100"]) == 0
    capsys.readouterr()
    assert cli.main(["budget", "show", "--email", "ops@example.com", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["monthly_usd"] == 0.5 and shown["spent_usd"] == pytest.approx(0.45)
    assert shown["warn"] is True and shown["exceeded"] is False  # 90% of the cap
    assert shown["global_monthly_usd"] == 100.0
    assert cli.main(["budget", "set", "--email", "nobody@example.com", "--monthly-usd", "1"]) == 1
    assert cli.main(["budget", "set", "--global", "--monthly-usd", "-1"]) == 1
    assert "error: the monthly cap must be zero or more dollars" in capsys.readouterr().err


def test_the_warning_flag_at_80_percent(db_url: str) -> None:
    uid = _user()
    _cap(uid, "1.00")
    _spend(uid, "0.70")
    held = budgets.reserve(uid, None, Decimal("0.15"))
    assert held is not None and held.warning and "monthly" in held.warning


def test_stale_reservations_stop_counting(db_url: str) -> None:
    uid = _user()
    _cap(uid, "1.00")
    assert budgets.reserve(uid, None, Decimal("0.9")) is not None
    with pytest.raises(BudgetExceeded):
        budgets.reserve(uid, None, Decimal("0.2"))
    with get_engine().begin() as conn:  # the worker that held it died 20 minutes ago
        conn.execute(
            update(BudgetReservation.__table__).values(  # type: ignore[attr-defined]
                created_at=utcnow() - timedelta(minutes=20)
            )
        )
    assert budgets.reserve(uid, None, Decimal("0.2")) is not None


def _race(engine: Engine, user_id: int, n: int, amount: Decimal) -> tuple[int, int]:
    """``n`` threads reserving at once; (granted, refused)."""
    start = threading.Barrier(n)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait()
        try:
            ok = budgets.reserve(user_id, "run-x", amount, engine=engine) is not None
        except BudgetExceeded:
            ok = False
        with lock:
            outcomes.append(ok)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sum(outcomes), outcomes.count(False)


def _seed_caps(engine: Engine) -> int:
    create_all(engine)
    with Session(engine) as s:
        user = auth.register(s, "race@example.com", "password-1")
        s.commit()
        assert user.id is not None
        uid = user.id
    with engine.begin() as conn:
        budgets.set_budget(conn, uid, monthly_usd="1.00")
    return uid


def test_concurrent_calls_cannot_overshoot_a_cap_on_sqlite(db_url: str) -> None:
    engine = get_engine(db_url)
    uid = _user("race@example.com")
    with engine.begin() as conn:
        budgets.set_budget(conn, uid, monthly_usd="1.00")
    granted, refused = _race(engine, uid, 8, Decimal("0.3"))
    assert (granted, refused) == (3, 5)  # 3 x 0.3 <= 1.00 < 4 x 0.3, whatever the timing


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with scratch_database("elx_budget_test") as engine:
        yield engine


def test_concurrent_calls_cannot_overshoot_a_cap_on_postgresql(pg_engine: Engine) -> None:
    uid = _seed_caps(pg_engine)
    granted, refused = _race(pg_engine, uid, 8, Decimal("0.3"))
    assert (granted, refused) == (3, 5)
    # and booked spend counts like reservations: settle two with real cost, race again
    with pg_engine.begin() as conn:
        ledger.write(conn, [ledger.Attempt(caller="step", provider="claude", model="m",
                                           user_id=uid, cost_usd=Decimal("0.5"))])  # fmt: skip
        conn.execute(update(BudgetReservation.__table__).values(settled_at=utcnow()))  # type: ignore[attr-defined]
    assert _race(pg_engine, uid, 6, Decimal("0.2")) == (2, 4)  # 0.5 + 2 x 0.2 <= 1.00


async def test_two_concurrent_runs_cannot_overshoot_the_monthly_cap(
    db_url: str, fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both runs' reservations are made before either call is sent (a barrier after the
    reservation: without it, on a fast machine, the first run could finish and settle at its
    tiny actual cost before the second reserved — then both fit, rightly, and the test said
    nothing about concurrency)."""
    uid = _user()
    _cap(uid, "0.025")  # room for one estimate (>= $0.015), not two
    both_reserved = threading.Barrier(2, timeout=20)
    real_reserve = meter._reserve

    def reserve_then_wait(*args: object) -> object:
        try:
            return real_reserve(*args)  # type: ignore[arg-type]
        finally:
            both_reserved.wait()

    monkeypatch.setattr(meter, "_reserve", reserve_then_wait)
    fake.queue(
        *(
            fake_anthropic.text(
                "hi",
                input=10,
                output=5,
            )
            for _ in range(2)
        )
    )

    async def one(i: int) -> str:
        outcome = await run_recorded(
            load_text(ONE_STEP),
            pipeline_yaml=ONE_STEP,
            provider_for=lambda _kind: _live(fake),
            user_id=uid,
            workspace=tmp_path / f"ws{i}",
            output_dir=tmp_path / f"out{i}",
            heartbeat_s=0,
        )
        return outcome.status

    statuses = await asyncio.gather(one(1), one(2))
    assert sorted(statuses) == ["failed", "succeeded"]
    assert len(fake.requests) == 1 and len(_rows()) == 1
