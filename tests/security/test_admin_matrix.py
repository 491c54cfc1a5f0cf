"""/admin and /settings under attack: a member and an anonymous tab call every admin handler
with forged and targeted payloads (another user's id, self-promotion, limits, audit filters)
and change nothing, see no other user's email; a second user cannot revoke the first user's
API key by id. Uses the shared ``alice`` / ``bob`` accounts only (no new registrations: the
shared app allows 12 a minute)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.conftest import Account, Served, connect
from tests.security.test_matrix import HANDLERS, P, _bad_frames, _params, _payloads

ADMIN = P + "admin____admin_state"
SETTINGS = P + "settings____settings_state"
ADMIN_ACTIONS = (
    "role_changed",
    "user_disabled",
    "user_enabled",
    "limits_changed",
    "budget_changed",
)


@pytest.fixture
def roles(served: Served, alice: Account, bob: Account) -> Iterator[None]:
    """Alice admin, Bob member, whichever registered first in this session (restored)."""
    with served.db() as conn:
        before = conn.execute(
            "select id, is_admin from app_user where id in (?, ?)", (alice.user_id, bob.user_id)
        ).fetchall()
        conn.execute("update app_user set is_admin = 1 where id = ?", (alice.user_id,))
        conn.execute("update app_user set is_admin = 0 where id = ?", (bob.user_id,))
    try:
        yield
    finally:
        with served.db() as conn:
            for user_id, flag in before:
                conn.execute("update app_user set is_admin = ? where id = ?", (flag, user_id))


def _snapshot(served: Served) -> dict[str, Any]:
    with served.db() as conn:
        users = conn.execute(
            "select id, email, is_admin, is_active, chat_limit, api_limit from app_user order by id"
        ).fetchall()
        sessions = conn.execute(
            "select count(*) from auth_session where revoked_at is null"
        ).fetchone()[0]
        caps = conn.execute(
            "select user_id, monthly_usd, per_run_usd from budget order by id"
        ).fetchall()
        marks = ",".join("?" * len(ADMIN_ACTIONS))
        events = conn.execute(
            f"select count(*) from audit_event where action in ({marks})", ADMIN_ACTIONS
        ).fetchone()[0]
    return {"users": users, "live_sessions": sessions, "admin_events": events, "caps": caps}


def _targeted(alice: Account, bob: Account) -> list[tuple[str, dict[str, Any]]]:
    """Well-formed calls a member might try: on the admin, on themself, on the log."""
    return [
        ("load", {}),
        ("set_role", {"user_id": bob.user_id, "is_admin": True}),  # self-promotion
        ("set_role", {"user_id": alice.user_id, "is_admin": False}),
        ("set_active", {"user_id": alice.user_id, "active": False}),
        ("set_active", {"user_id": bob.user_id, "active": True}),
        (
            "save_limits",
            {"form_data": {"user_id": str(bob.user_id), "chat_limit": "", "api_limit": ""}},
        ),
        (
            "save_limits",
            {"form_data": {"user_id": str(alice.user_id), "chat_limit": "1/day"}},
        ),
        (
            "save_budget",
            {"form_data": {"subject": str(bob.user_id), "monthly_usd": "", "per_run_usd": ""}},
        ),
        ("save_budget", {"form_data": {"subject": "global", "monthly_usd": "0"}}),  # stop all
        ("save_budget", {"form_data": {"subject": str(alice.user_id), "monthly_usd": "0.01"}}),
        ("filter_audit", {"form_data": {"email": alice.email, "action": "login"}}),
        ("filter_audit", {"form_data": {}}),
        ("older", {}),
        ("setvar", {"var_name": "allowed", "value": True}),
    ]


async def _attack(served: Served, account: Account | None, alice: Account, bob: Account) -> Any:
    client = await connect(served, account)
    try:
        for handler, page in HANDLERS[ADMIN].items():
            for payload in _payloads(_params(ADMIN, handler)):
                await client.emit(f"{ADMIN}.{handler}", payload, page)
            await asyncio.sleep(0.05)
        for handler, payload in _targeted(alice, bob):
            await client.emit(f"{ADMIN}.{handler}", payload, "/admin")
        await client.emit(f"{P}auth____auth_state.check_login", {}, "/chat")  # still alive?
        await asyncio.sleep(2)
    finally:
        await client.close()
    return client


@pytest.mark.parametrize("who", ["member", "anonymous"])
async def test_a_member_or_anonymous_calling_admin_handlers_changes_and_sees_nothing(
    served: Served, alice: Account, bob: Account, roles: None, who: str
) -> None:
    before = _snapshot(served)
    client = await _attack(served, bob if who == "member" else None, alice, bob)
    assert _snapshot(served) == before
    assert not any(alice.email in f for f in client.raw_frames)
    assert _bad_frames(client) == []
    assert client.var(ADMIN, "users") in (None, [])
    assert client.var(ADMIN, "events") in (None, [])
    assert client.var(ADMIN, "budgets") in (None, [])
    assert client.var(ADMIN, "allowed") in (None, False)
    if who == "member":  # the refusal reached the member, plainly
        assert client.var(ADMIN, "error") == "You do not have access to this."

    # The same calls by the admin do show the accounts (the test can see a leak).
    owner = await connect(served, alice)
    try:
        await owner.emit(f"{ADMIN}.load", {}, "/admin")
        await owner.wait_for(lambda: bool(owner.var(ADMIN, "users")), 30)
        assert any(bob.email in f for f in owner.raw_frames)
    finally:
        await owner.close()


async def test_a_second_user_cannot_revoke_the_first_users_key_by_id(
    served: Served, alice: Account, bob: Account
) -> None:
    name = "alice-deploy-key"
    owner = await connect(served, alice)
    try:
        await owner.emit(f"{SETTINGS}.load", {}, "/settings")
        await owner.emit(f"{SETTINGS}.create_key", {"form_data": {"name": name}}, "/settings")
        await owner.wait_for(lambda: bool(owner.var(SETTINGS, "new_key")), 30)
        plain = owner.var(SETTINGS, "new_key")
        await owner.emit(f"{SETTINGS}.key_dialog_changed", {"is_open": False}, "/settings")
        await owner.wait_for(lambda: owner.var(SETTINGS, "new_key") == "", 30)
    finally:
        await owner.close()
    with served.db() as conn:
        key_id, prefix = conn.execute(
            "select id, prefix from api_key where user_id = ? and name = ? order by id desc",
            (alice.user_id, name),
        ).fetchone()
    assert plain.startswith(prefix)
    revoked = "select count(*) from audit_event where action = 'key_revoked'"
    before = served.count(revoked)
    thief = await connect(served, bob)
    try:
        await thief.emit(f"{SETTINGS}.load", {}, "/settings")
        for key in (key_id, str(key_id), [key_id], {"id": key_id}, key_id + 0.0):
            await thief.emit(f"{SETTINGS}.revoke_key", {"key_id": key}, "/settings")
        await thief.emit(f"{P}auth____auth_state.check_login", {}, "/chat")
        await asyncio.sleep(2)
        assert not any(prefix in f or name in f or plain in f for f in thief.raw_frames)
        assert _bad_frames(thief) == []
    finally:
        await thief.close()
    assert served.count("select count(*) from api_key where id = ? and revoked_at is null", key_id)
    assert served.count(revoked) == before
    # The owner can (the refusal above was about ownership, not a broken handler).
    owner = await connect(served, alice)
    try:
        await owner.emit(f"{SETTINGS}.revoke_key", {"key_id": key_id}, "/settings")
        await owner.wait_for(lambda: bool(owner.var(SETTINGS, "message")), 30)
    finally:
        await owner.close()
    assert served.count(
        "select count(*) from api_key where id = ? and revoked_at is not null", key_id
    )
