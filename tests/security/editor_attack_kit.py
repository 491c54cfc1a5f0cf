"""Helpers of the editor attack battery (tests/security/test_editor_attacks.py and
test_editor_freezes.py): tabs of the attack app, pings that show a frozen server by order
(not durations), what the server sent a tab, and the app's database."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tests.security.conftest import Account, Served, connect
from tests.support.reflex_client import ReflexClient

P = "reflex___state____state.elexirion_app___web___state___"
ED, LIB = P + "editor____editor_state", P + "library____library_state"
VER, RUN = P + "editor_versions____versions_state", P + "editor_run____editor_run_state"
RUNS, NOTICE = P + "runs____runs_state", P + "notice____notice_state"
SECRET = "alice-editor-secret-5150"


def steps(n: int, body: str = "claude") -> str:
    head = "workflow:\n  name: w\n  steps:\n"
    if body == "dup":  # n steps sharing one name
        return head + "    - {name: s}\n" * n
    return head + "".join(
        f"    - name: s{i}\n      type: claude\n      prompt:\n"
        f'        - type: static\n          content: "{SECRET} {i}"\n'
        for i in range(n)
    )


def bomb(levels: int) -> str:
    """A billion-laughs list: ``10**levels`` strings out of ~50 bytes a level."""
    out = ["a0: &a0 [lol]"]
    out += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(out)


async def settled(client: ReflexClient, page: str, timeout: float = 600) -> float:
    """Arrival time of the answer to a marker sent after everything this tab sent before."""
    mark, seen = f"done-{uuid.uuid4().hex[:10]}", []

    def listen(update: dict[str, Any], at: float) -> None:
        if ((update.get("delta") or {}).get(NOTICE) or {}).get("notice_rx_state_") == mark:
            seen.append(at)

    client.listeners.append(listen)
    try:
        await client.emit(f"{NOTICE}.show", {"message": mark}, page)
        await client.wait_for(lambda: bool(seen), timeout)
    finally:
        client.listeners.remove(listen)
    return seen[0]


async def send(client: ReflexClient, state: str, handler: str, payload: Any, page: str) -> None:
    await client.emit(f"{state}.{handler}", payload, page)
    await settled(client, page)


async def own_pipeline(app: Served, account: Account, text: str | None = None) -> tuple:
    """A new pipeline of ``account`` open in a tab: (client, page, name)."""
    client = await connect(app, account)
    await client.emit(f"{LIB}.new_blank", {}, "/pipelines")
    await client.wait_for(lambda: any(e["name"] == "_redirect" for e in client.frontend_events), 30)
    page = [e for e in client.frontend_events if e["name"] == "_redirect"][-1]["payload"]["path"]
    await send(client, ED, "load", {}, page)
    if text is not None:
        await send(client, ED, "yaml_changed", {"text": text}, page)
    return client, page, page.rsplit("=", 1)[1]


async def reopen(app: Served, account: Account, page: str) -> ReflexClient:
    client = await connect(app, account)
    await send(client, ED, "load", {}, page)
    return client


async def held_pings(
    app: Served,
    victim: Account,
    work: Callable[[], Awaitable[object]],
    page: str = "/chat",
    each: tuple[str, dict[str, Any]] | None = None,
) -> int:
    """While ``work`` runs, a tab of the victim on ``page`` sends a ping every 100 ms (the
    event ``each`` first, when given): how many later pings the most delayed one saw sent
    before its own answer (0 or 1 on a free server)."""
    tab = await connect(app, victim)
    if page != "/chat":
        await send(tab, ED, "load", {}, page)
    sent: list[str] = []
    overtaken: dict[str, int] = {}

    def listen(update: dict[str, Any], at: float) -> None:
        mark = ((update.get("delta") or {}).get(NOTICE) or {}).get("notice_rx_state_")
        if isinstance(mark, str) and mark in sent and mark not in overtaken:
            overtaken[mark] = len(sent) - 1 - sent.index(mark)

    tab.listeners.append(listen)
    stop = asyncio.Event()

    async def ping() -> None:
        while not stop.is_set():
            if each is not None:
                await tab.emit(each[0], each[1], page)
            sent.append(f"ping-{len(sent)}")
            await tab.emit(f"{NOTICE}.show", {"message": sent[-1]}, page)
            await asyncio.sleep(0.1)

    pinger = asyncio.create_task(ping())
    try:
        await asyncio.sleep(0.5)
        await work()
        stop.set()
        await pinger
        await tab.wait_for(lambda: len(overtaken) == len(sent), 600)
    finally:
        stop.set()
        await tab.close()
    return max(overtaken.values())


def bad_frames(client: ReflexClient) -> list[str]:
    words = ("An error occurred", "Traceback", "Contact the website")
    return [f[:300] for f in client.raw_frames if any(w in f for w in words)]


def received(client: ReflexClient) -> list[str]:
    """Every frame the server sent, without the router's echo of the URL the client sent."""
    out = []
    for frame in client.raw_frames:
        start = frame.find("[")
        try:
            packet = json.loads(frame[start:]) if start >= 0 else None
        except ValueError:
            packet = None
        if not (isinstance(packet, list) and len(packet) > 1 and isinstance(packet[1], dict)):
            out.append(frame)
            continue
        for changed in (packet[1].get("delta") or {}).values():
            for key in [k for k in changed if k.startswith("rx_router")]:
                del changed[key]
        out.append(json.dumps(packet))
    return out


def downloads(client: ReflexClient) -> list[str]:
    """The text of every file the server told this tab to download."""
    out = []
    for e in client.frontend_events:
        url = str((e.get("payload") or {}).get("url") or "") if e["name"] == "_download" else ""
        out.append(base64.b64decode(url.split(",", 1)[1]).decode() if ";base64," in url else url)
    return [d for d in out if d]


def db(app: Served, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(app.data / "app.db") as conn:
        return conn.execute(sql, args).fetchall()


def doc(app: Served, account: Account, name: str, column: str = "id") -> Any:
    """A column of ``account``'s pipeline ``name`` (None when there is no such pipeline)."""
    sql = f"select {column} from pipeline_doc where user_id = ? and name = ?"
    rows = db(app, sql, account.user_id, name)
    return rows[0][0] if rows else None


async def wait_runs_over(app: Served, account: Account, name: str) -> None:
    """Until no run of ``account``'s pipeline ``name`` is queued or running (at most 5 min)."""
    live = "select count(*) from run where pipeline_id = ? and status in ('queued', 'running')"
    for _ in range(600):
        if db(app, live, doc(app, account, name))[0][0] == 0:
            return
        await asyncio.sleep(0.5)
