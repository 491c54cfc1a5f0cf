"""Identity comes from the session cookie of the connection, never from the tab token; a
reply is answered once. Served app, real websocket and HTTP clients (issue 7 items 1, 4)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.security.conftest import Account, Served, connect, register, state_names
from tests.support.reflex_client import ReflexClient

N = state_names()
CHAT, AUTH, WS = N["chat"], N["auth"], N["workspace"]


def _tail(client: ReflexClient) -> list[dict[str, Any]]:
    return list(client.var(CHAT, "tail") or [])


async def _open_chat(client: ReflexClient) -> None:
    await client.emit(f"{CHAT}.load", {}, "/chat")
    await client.wait_for(lambda: client.var(CHAT, "conversations") is not None, 30)


async def _send(client: ReflexClient, text: str) -> dict[str, Any]:
    before = len(_tail(client))
    await client.emit(f"{CHAT}.send", {"form_data": {"message": text}}, "/chat")

    def answered() -> bool:
        tail = _tail(client)
        return len(tail) >= before + 2 and tail[-1]["role"] == "assistant"

    await client.wait_for(answered, 90)
    await client.wait_for(lambda: client.var(CHAT, "streaming") is False, 30)
    return _tail(client)[-1]


async def test_session_cookie_is_httponly_and_never_sent_to_the_page(served: Served) -> None:
    resp = httpx.post(
        f"{served.url}/auth/register",
        data={"email": "cookie-check@example.com", "password": "password-123"},
        headers={"Accept": "application/json"},
    )
    cookie = resp.headers["set-cookie"]
    assert "elx_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    token = resp.cookies["elx_session"]
    client = await connect(
        served, Account("cookie-check@example.com", f"elx_session={token}", token, 0)
    )
    try:
        await _open_chat(client)
        await client.wait_for(
            lambda: client.var(AUTH, "user_email") == "cookie-check@example.com", 30
        )
        assert client.raw_frames and not any(token in f for f in client.raw_frames)
    finally:
        await client.close()


async def test_replayed_stream_reply_runs_nothing_and_changes_nothing(
    served: Served, alice: Account
) -> None:
    client = await connect(served, alice)
    try:
        await _open_chat(client)
        final = await _send(client, "analyze the code quality of my workspace")
        runs = served.count("select count(*) from run where user_id = ?", alice.user_id)
        calls = served.count("select count(*) from llm_call where user_id = ?", alice.user_id)
        content = final["content"]
        assert runs >= 1  # the turn ran a pipeline
        for _ in range(10):
            await client.emit(f"{CHAT}.stream_reply", {}, "/chat")
        await asyncio.sleep(3)
        assert served.count("select count(*) from run where user_id = ?", alice.user_id) == runs
        assert (
            served.count("select count(*) from llm_call where user_id = ?", alice.user_id) == calls
        )
        with served.db() as conn:
            saved = conn.execute(
                "select content from message where id = ?", (final["id"],)
            ).fetchone()[0]
        assert saved == content
    finally:
        await client.close()


async def test_a_tab_token_alone_yields_nothing_of_its_owner(
    served: Served, alice: Account, bob: Account
) -> None:
    secret = "my secret plan number 4711"
    victim = await connect(served, alice)
    token = victim.token
    try:
        await _open_chat(victim)
        await _send(victim, secret)
    finally:
        await victim.close()
    for thief_account in (None, bob):  # anonymous, then logged in as someone else
        thief = await connect(served, thief_account, token=token)
        try:
            await _open_chat(thief)
            await asyncio.sleep(1)
            assert not any(secret in f for f in thief.raw_frames)
            assert not any(alice.email in f for f in thief.raw_frames)
            assert thief.var(AUTH, "user_email") in ("", None, bob.email)
            if thief_account is None:
                assert any(
                    "redirect" in str(e) or "/login" in str(e) for e in thief.frontend_events
                )
        finally:
            await thief.close()
    # The owner, back with her cookie on the same tab, sees her conversation again.
    back = await connect(served, alice, token=token)
    try:
        await _open_chat(back)
        await back.wait_for(lambda: bool(back.var(CHAT, "messages")), 30)
        assert any(secret in (m.get("content") or "") for m in back.var(CHAT, "messages"))
    finally:
        await back.close()


def _upload(
    served: Served, token: str, cookie: str | None, name: str, body: bytes
) -> httpx.Response:
    headers = {"Reflex-Client-Token": token, "Reflex-Event-Handler": f"{WS}.upload"}
    if cookie:
        headers["Cookie"] = cookie
    return httpx.post(
        f"{served.url}/_upload",
        headers=headers,
        files={"files": (name, body, "text/plain")},
        timeout=30,
    )


async def test_upload_with_a_victims_tab_token_is_refused(
    served: Served, alice: Account, bob: Account
) -> None:
    victim = await connect(served, alice)  # online, on the workspace page
    try:
        await victim.emit(f"{WS}.load", {}, "/workspace")
        await victim.wait_for(lambda: victim.var(WS, "files") is not None, 30)
        anonymous = _upload(served, victim.token, None, "planted.txt", b"x")
        assert anonymous.status_code == 401
        as_bob = _upload(served, victim.token, bob.cookie, "planted.txt", b"x")
        assert as_bob.status_code == 403
        alice_dir = served.data / "workspaces" / str(alice.user_id)
        assert not (alice_dir / "planted.txt").exists()
        own = _upload(served, victim.token, alice.cookie, "mine.txt", b"hello")
        assert own.status_code == 200, own.text
        assert "mine.txt" in own.text  # the upload's state delta lists the new file
        assert (alice_dir / "mine.txt").read_bytes() == b"hello"
    finally:
        await victim.close()


async def test_logout_revokes_the_session(served: Served) -> None:
    account = register(served)
    resp = httpx.post(
        f"{served.url}/auth/logout",
        headers={"Cookie": account.cookie, "Accept": "application/json"},
    )
    assert resp.status_code == 200
    client = await connect(served, account)  # the old cookie, replayed
    try:
        await _open_chat(client)
        await asyncio.sleep(0.5)
        assert client.var(AUTH, "user_email") in ("", None)
    finally:
        await client.close()
