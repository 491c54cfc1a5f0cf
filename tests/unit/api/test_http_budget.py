"""Budgets on the real API routes (issue 10 item 2): a chat message or a run that cannot start
within the caller's caps answers HTTP 402 with the numbers before anything is saved, sent or
queued; a cap at its warn ratio is announced in the chat stream's ``start`` event. The chat
model is live here: the real Anthropic SDK against tests/fakes' server (offline calls are never
refused, so the offline model cannot show a refusal)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlmodel import Session, select

from elexirion_app import config
from elexirion_app.api.http import app as http_app
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.db.models import Conversation, LLMCall, Message, Run
from elexirion_app.services.accounts import api_keys, auth, rate_limits
from elexirion_app.services.billing import budgets, ledger, meter
from tests.fakes import fake_anthropic
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.unit.api.test_http_api import WORKFLOW, _bearer, _events


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ELEXIRION_CHAT_PROVIDER", "claude")
    monkeypatch.setenv("ELEXIRION_CHAT_MODEL", "claude-sonnet-4-5")
    config.get_settings.cache_clear()
    try:
        yield server
    finally:
        await server.close()
        config.get_settings.cache_clear()


@pytest.fixture
async def api(
    db_url: str, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    config.get_settings.cache_clear()
    rate_limits.reset()
    transport = httpx.ASGITransport(app=http_app.build())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    rate_limits.reset()


def _user(email: str) -> tuple[int, str]:
    with session_scope() as session:
        user = auth.register(session, email, "password-123")
        _view, plain = api_keys.create_key(session, user.id, "test")
    assert user.id is not None
    return user.id, plain


def _cap(user_id: int | None, monthly: str) -> None:
    with get_engine().begin() as conn:
        budgets.set_budget(conn, user_id, monthly_usd=monthly)


def _spend(user_id: int, usd: str) -> None:
    ledger.record(
        ledger.Attempt(caller="chat", provider="claude", model="claude-sonnet-4-5",
                       user_id=user_id, cost_usd=Decimal(usd))
    )  # fmt: skip


def _count(model: type) -> int:
    with Session(get_engine()) as s:
        return len(s.exec(select(model)).all())


def _opening() -> Decimal:
    amount = meter.opening_estimate("hello?")
    assert amount is not None and amount > 0  # the live chat model is in use
    return amount


async def test_chat_over_the_cap_answers_402_before_anything_is_saved_or_sent(
    api: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    uid, key = _user("a@example.com")
    _cap(uid, "0.01")  # the opening estimate is 4096 x $15/MTok of output alone: ~$0.06
    resp = await api.post("/api/agent/chat", json={"message": "hello?"}, headers=_bearer(key))
    assert resp.status_code == 402, resp.text
    body = resp.json()["error"]
    assert body["code"] == "budget_exceeded" and body["scope"] == "monthly"
    assert body["cap_usd"] == 0.01 and body["spent_usd"] == 0 and body["reserved_usd"] == 0
    assert body["estimate_usd"] == pytest.approx(float(_opening()))
    assert "Ask an admin to raise the cap" in body["message"]
    assert fake.requests == []  # nothing sent to the model
    assert _count(Conversation) == 0 and _count(Message) == 0 and _count(LLMCall) == 0


async def test_the_global_cap_refuses_everyone_with_its_scope(
    api: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    _uid, key = _user("a@example.com")
    _cap(None, "0.02")
    resp = await api.post("/api/agent/chat", json={"message": "hello?"}, headers=_bearer(key))
    assert resp.status_code == 402 and resp.json()["error"]["scope"] == "global"
    assert fake.requests == []


async def test_a_cap_near_its_end_streams_with_the_warning(
    api: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    uid, key = _user("a@example.com")
    opening = _opening()
    _cap(uid, str((opening * Decimal("1.15")).quantize(Decimal("0.0001"))))  # ~87 % used
    for _ in range(3):  # the router and the reply (and a spare)
        fake.queue(fake_anthropic.text("Hi there.", input=20, output=5))
    resp = await api.post("/api/agent/chat", json={"message": "hello?"}, headers=_bearer(key))
    assert resp.status_code == 200, resp.text
    events = _events(resp.text)
    kind, start = events[0]
    assert kind == "start" and "monthly budget at" in start["budget_warning"]
    assert events[-1][0] == "final"


async def test_a_run_once_the_cap_is_used_up_answers_402_and_queues_nothing(
    api: httpx.AsyncClient,
) -> None:
    uid, key = _user("a@example.com")
    _cap(uid, "0.05")
    _spend(uid, "0.05")
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": WORKFLOW, "inputs": {}}, headers=_bearer(key)
    )
    assert resp.status_code == 402, resp.text
    body = resp.json()["error"]
    assert body["code"] == "budget_exceeded"
    assert (body["cap_usd"], body["spent_usd"], body["estimate_usd"]) == (0.05, 0.05, 0.0)
    assert _count(Run) == 0


async def test_under_the_cap_a_run_starts(api: httpx.AsyncClient) -> None:
    uid, key = _user("a@example.com")
    _cap(uid, "1.00")
    _spend(uid, "0.50")
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": WORKFLOW, "inputs": {}}, headers=_bearer(key)
    )
    assert resp.status_code == 202, resp.text


async def test_another_users_spend_does_not_refuse_me(
    api: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    spender, _ = _user("spender@example.com")
    _cap(spender, "0.05")
    _spend(spender, "0.05")
    _uid, key = _user("b@example.com")
    for _ in range(3):
        fake.queue(fake_anthropic.text("Hi.", input=20, output=5))
    resp = await api.post("/api/agent/chat", json={"message": "hello?"}, headers=_bearer(key))
    assert resp.status_code == 200
