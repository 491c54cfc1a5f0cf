"""/dashboard under attack: a member calls every dashboard handler with the other user's id in
every payload (the user filter, the tab's own filter var, forged values) and sees only their
own numbers — in the state, in every frame, in the CSV. The owner's own tab does see their
figure (so the test can see a leak). Uses the shared ``alice`` / ``bob`` accounts only."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine

from elexirion_app.services.billing import ledger
from elexirion_app.services.billing.ledger import Attempt
from tests.security.conftest import Account, Served, connect
from tests.security.test_matrix import HANDLERS, P, _bad_frames, _params, _payloads

DASH = P + "dashboard____dashboard_state"
ALICE_COST = Decimal("4242.4242")  # "$4,242.42" on the page, "4242.42420000" in the CSV
BOB_COST = Decimal("1.5")


def _book(served: Served, user_id: int, cost: Decimal, model: str, tokens: int) -> None:
    """A ledger row through the app's write path, in the served app's database."""
    engine = create_engine(f"sqlite:///{served.data / 'app.db'}")
    try:
        when = datetime.now(UTC) - timedelta(hours=1)
        ledger.record_many(
            [
                Attempt(
                    caller="api",
                    provider="anthropic",
                    model=model,
                    user_id=user_id,
                    input_tokens=tokens,
                    cost_usd=cost,
                    latency_ms=120,
                    created_at=when,
                )
            ],
            engine=engine,
        )
    finally:
        engine.dispose()


def _downloads(client: Any) -> str:
    """The text of every file the server told this tab to download (data URLs decoded)."""
    out = []
    for e in client.frontend_events:
        if e["name"] != "_download":
            continue
        url = str((e.get("payload") or {}).get("url") or "")
        out.append(base64.b64decode(url.split(",", 1)[1]).decode() if ";base64," in url else url)
    return "\n".join(out)


@pytest.fixture
def members(served: Served, alice: Account, bob: Account) -> Iterator[None]:
    """Alice and Bob both members for the test (whoever registered first), then restored."""
    ids = (alice.user_id, bob.user_id)
    with served.db() as conn:
        before = conn.execute(
            "select id, is_admin from app_user where id in (?, ?)", ids
        ).fetchall()
        conn.execute("update app_user set is_admin = 0 where id in (?, ?)", ids)
    try:
        yield
    finally:
        with served.db() as conn:
            for user_id, flag in before:
                conn.execute("update app_user set is_admin = ? where id = ?", (flag, user_id))


def _leaks(frames: list[str]) -> list[str]:
    """Alice's figures anywhere (her model's name is checked apart: Bob's own forged filter
    names it, and the tab echoes his filter back)."""
    marks = ("4,242.42", "4242.42", "777777", "777,777", "778k")
    return [
        m + ": " + f[f.index(m) - 80 : f.index(m) + 40] for f in frames for m in marks if m in f
    ]


def _targeted(alice: Account) -> list[tuple[str, dict[str, Any]]]:
    uid = alice.user_id
    return [
        ("load", {}),
        ("set_filter", {"name": "user", "value": str(uid)}),
        ("set_filter", {"name": "user", "value": "all"}),
        ("set_filter", {"name": "model", "value": "claude-secret-alice"}),
        ("setvar", {"var_name": "filters", "value": {"user": str(uid), "range": "90d"}}),
        ("setvar", {"var_name": "is_admin", "value": True}),
        ("load", {}),
        ("export_csv", {}),
        ("reset_filters", {}),
        ("set_filter", {"name": "user", "value": uid}),
        ("export_csv", {}),
    ]


async def test_a_member_with_the_other_users_id_sees_only_their_own_numbers(
    served: Served, alice: Account, bob: Account, members: None
) -> None:
    _book(served, alice.user_id, ALICE_COST, "claude-secret-alice", 777_777)
    _book(served, bob.user_id, BOB_COST, "claude-bob", 1000)
    thief = await connect(served, bob)
    try:
        for handler, page in HANDLERS[DASH].items():
            for payload in _payloads(_params(DASH, handler)):
                await thief.emit(f"{DASH}.{handler}", payload, page)
            await asyncio.sleep(0.05)
        for handler, payload in _targeted(alice):
            await thief.emit(f"{DASH}.{handler}", payload, "/dashboard")
        await thief.emit(f"{DASH}.load", {}, "/dashboard")
        await thief.wait_for(lambda: bool(thief.var(DASH, "kpis")), 30)
        await asyncio.sleep(1)
        assert _leaks(thief.raw_frames) == []
        assert _leaks([_downloads(thief)]) == []
        assert _bad_frames(thief) == []
        kpis = {k["id"]: k["value"] for k in thief.var(DASH, "kpis")}
        assert kpis["kpi-spend"] == "$1.50"  # Bob's own spend, nothing of Alice's
        assert thief.var(DASH, "scope_label") == "your usage"
        assert thief.var(DASH, "users") in (None, [])
        assert "claude-secret-alice" not in thief.var(DASH, "models")
        assert "claude-secret-alice" not in str(thief.var(DASH, "by_model"))
        assert "1.50000000" in _downloads(thief)  # the CSV went out, with Bob's figure
    finally:
        await thief.close()

    owner = await connect(served, alice)  # the same page for Alice shows her figure
    try:
        await owner.emit(f"{DASH}.load", {}, "/dashboard")
        await owner.wait_for(lambda: bool(owner.var(DASH, "kpis")), 30)
        kpis = {k["id"]: k["value"] for k in owner.var(DASH, "kpis")}
        assert kpis["kpi-spend"] == "$4,242.42"
    finally:
        await owner.close()


async def test_anonymous_dashboard_calls_get_nothing(served: Served, alice: Account) -> None:
    client = await connect(served, None)
    try:
        for handler, payload in _targeted(alice):
            await client.emit(f"{DASH}.{handler}", payload, "/dashboard")
        await client.emit(f"{P}auth____auth_state.check_login", {}, "/chat")
        await asyncio.sleep(2)
        assert _leaks(client.raw_frames) == [] and _downloads(client) == ""
        assert client.var(DASH, "kpis") in (None, [])
        assert _bad_frames(client) == []
    finally:
        await client.close()
