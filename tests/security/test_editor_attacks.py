"""Attacks on the pipeline library and editor (issue 8), against the served app: a second user
with the first user's names, run ids and tab token; path tricks in names and shipped keys;
forged payloads with a pipeline open; YAML bombs; floods; XSS payloads in a real browser.

Holes found are ``xfail(strict=True, reason="finding N")``: they fail today and will turn the
suite red (XPASS) once fixed, so the marker is then removed. Freezes are shown by order, not by
durations: while the attacker's work runs, a victim tab sends a ping every 100 ms, and the test
counts how many later pings were sent before the most delayed ping was answered (a free server
answers each before the next leaves; a blocked event loop or a full database pool holds all).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sqlite3
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

# Reflex keeps its registry of states in a ContextVar, created when the first state class is
# defined. Defined first inside an async test's task (``connect`` does), the registry stays in
# that task's context and a later test importing the app fails (LookupError): define it here.
import reflex.state  # noqa: F401

from tests.security.conftest import Account, Served, connect, register
from tests.support.reflex_client import ReflexClient

P = "reflex___state____state.elexirion_app___web___state___"
ED, LIB = P + "editor____editor_state", P + "library____library_state"
VER, RUN = P + "editor_versions____versions_state", P + "editor_run____editor_run_state"
RUNS, NOTICE = P + "runs____runs_state", P + "notice____notice_state"
SECRET = "alice-editor-secret-5150"


@pytest.fixture(scope="module")
def mallory(served: Served) -> Account:
    """The attacker: a third account (bob stays without pipelines or runs for test_matrix)."""
    return register(served)


def _steps(n: int, body: str = "claude") -> str:
    head = "workflow:\n  name: w\n  steps:\n"
    if body == "dup":  # n steps sharing one name
        return head + "    - {name: s}\n" * n
    return head + "".join(
        f"    - name: s{i}\n      type: claude\n      prompt:\n"
        f'        - type: static\n          content: "{SECRET} {i}"\n'
        for i in range(n)
    )


def _bomb(levels: int) -> str:
    """A billion-laughs list: ``10**levels`` strings out of ~50 bytes a level."""
    out = ["a0: &a0 [lol]"]
    out += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(out)


async def _settled(client: ReflexClient, page: str, timeout: float = 600) -> float:
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


async def _send(client: ReflexClient, state: str, handler: str, payload: Any, page: str) -> None:
    await client.emit(f"{state}.{handler}", payload, page)
    await _settled(client, page)


async def _own_pipeline(served: Served, account: Account, text: str | None = None) -> tuple:
    """A new pipeline of ``account`` open in a tab: (client, page, name)."""
    client = await connect(served, account)
    await client.emit(f"{LIB}.new_blank", {}, "/pipelines")
    await client.wait_for(lambda: any(e["name"] == "_redirect" for e in client.frontend_events), 30)
    page = [e for e in client.frontend_events if e["name"] == "_redirect"][-1]["payload"]["path"]
    await _send(client, ED, "load", {}, page)
    if text is not None:
        await _send(client, ED, "yaml_changed", {"text": text}, page)
    return client, page, page.rsplit("=", 1)[1]


async def _reopen(served: Served, account: Account, page: str) -> ReflexClient:
    client = await connect(served, account)
    await _send(client, ED, "load", {}, page)
    return client


async def _held_pings(
    served: Served,
    victim: Account,
    work: Callable[[], Awaitable[object]],
    page: str = "/chat",
    each: tuple[str, dict[str, Any]] | None = None,
) -> int:
    """While ``work`` runs, a tab of the victim on ``page`` sends a ping every 100 ms (the
    event ``each`` first, when given): how many later pings the most delayed one saw sent
    before its own answer (0 or 1 on a free server)."""
    tab = await connect(served, victim)
    if page != "/chat":
        await _send(tab, ED, "load", {}, page)
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


def _bad_frames(client: ReflexClient) -> list[str]:
    words = ("An error occurred", "Traceback", "Contact the website")
    return [f[:300] for f in client.raw_frames if any(w in f for w in words)]


def _received(client: ReflexClient) -> list[str]:
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


def _downloads(client: ReflexClient) -> list[str]:
    """The text of every file the server told this tab to download."""
    out = []
    for e in client.frontend_events:
        url = str((e.get("payload") or {}).get("url") or "") if e["name"] == "_download" else ""
        out.append(base64.b64decode(url.split(",", 1)[1]).decode() if ";base64," in url else url)
    return [d for d in out if d]


def _db(served: Served, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(served.data / "app.db") as conn:
        return conn.execute(sql, args).fetchall()


def _doc(served: Served, account: Account, name: str, column: str = "id") -> Any:
    """A column of ``account``'s pipeline ``name`` (None when there is no such pipeline)."""
    sql = f"select {column} from pipeline_doc where user_id = ? and name = ?"
    rows = _db(served, sql, account.user_id, name)
    return rows[0][0] if rows else None


async def _wait_runs_over(served: Served, account: Account, name: str) -> None:
    """Until no run of ``account``'s pipeline ``name`` is queued or running (at most 5 min)."""
    live = "select count(*) from run where pipeline_id = ? and status in ('queued', 'running')"
    for _ in range(600):
        if _db(served, live, _doc(served, account, name))[0][0] == 0:
            return
        await asyncio.sleep(0.5)


# --- a second user ------------------------------------------------------------------------


async def test_second_user_gets_nothing_of_the_first_users_pipeline_versions_runs_or_trace(
    served: Served, alice: Account, bob: Account
) -> None:
    owner, page, name = await _own_pipeline(served, alice, _steps(3))
    try:
        await _send(owner, VER, "save", {"form_data": {"version_name": SECRET}}, page)
        await owner.emit(f"{RUN}.run", {"form_data": {}}, page)
        await owner.wait_for(lambda: owner.var(RUN, "running") is True, 30)
        await owner.wait_for(lambda: owner.var(RUN, "running") is False, 120)
    finally:
        await owner.close()
    newest = "select id from run where user_id = ? order by created_at desc"
    run_id = _db(served, newest, alice.user_id)[0][0]
    thief = await connect(served, bob)
    try:
        for target in (f"/pipelines/edit?name={name}", f"/pipelines/edit?shipped={name}"):
            await _send(thief, ED, "load", {}, target)
            assert thief.var(ED, "name") == "" and thief.var(ED, "error")
            for state, handler, payload in [
                (ED, "export", {}),
                (VER, "refresh", {}),
                (VER, "choose", {"number": 1}),
                (VER, "diff", {}),
                (RUN, "prepare", {}),
                (RUN, "show_step", {"node_id": "s0"}),
                (RUN, "stop", {}),
                (ED, "select_node", {"node_id": "s0"}),
            ]:
                await _send(thief, state, handler, payload, target)
        for handler in ("export", "duplicate", "delete"):
            await _send(thief, LIB, handler, {"name": name}, "/pipelines")
        await _send(thief, RUNS, "load_trace", {}, f"/runs/trace?id={run_id}")
        await _send(thief, RUNS, "load_detail", {}, f"/runs/view?id={run_id}")
        assert thief.var(RUNS, "trace_items") == [] and thief.var(RUNS, "steps") == []
        seen = "\n".join(_received(thief) + _downloads(thief))
        assert SECRET not in seen and run_id not in seen and alice.email not in seen
        assert _bad_frames(thief) == []
    finally:
        await thief.close()
    assert _doc(served, alice, name) is not None


async def test_a_run_ending_after_its_tab_changed_hands_shows_the_new_user_nothing(
    served: Served, alice: Account, bob: Account
) -> None:
    """Alice starts a run and leaves; Bob logs in on the same browser tab (same tab token).
    Finding 7 (fixed in 8459167): the run's status, cost and history went to Bob's tab."""
    owner, page, name = await _own_pipeline(served, alice, _steps(800))
    await owner.emit(f"{RUN}.run", {"form_data": {}}, page)
    await owner.wait_for(lambda: owner.var(RUN, "running") is True, 60)
    token = owner.token
    await owner.close()
    successor = await connect(served, bob, token)
    try:
        await _wait_runs_over(served, alice, name)
        with contextlib.suppress(TimeoutError):  # the run's last words come after its row
            await successor.wait_for(lambda: bool(successor.var(RUN, "history")), 10)
        runs = [r for (r,) in _db(served, "select id from run where user_id = ?", alice.user_id)]
        assert not any(r in f for r in runs for f in successor.raw_frames)
        assert successor.var(RUN, "history", []) == [] and not successor.var(RUN, "run_cost")
    finally:
        await successor.close()


# --- paths ----------------------------------------------------------------------------------

TRICKS = [
    "../rxconfig",
    "../../../../etc/passwd",
    "/etc/passwd",
    "examples/../../rxconfig",
    "examples/../code_analysis",
    "%2e%2e/rxconfig",
    "..\\rxconfig",
    "code_analysis\x00",
    "code_analysis.yaml",
    "x" * 5000,
    "\u202ecode_analysis",
    "ｃｏｄｅ_analysis",
    "",
]


async def test_names_and_shipped_keys_reach_no_file_outside_the_library(
    served: Served, mallory: Account
) -> None:
    outside = served.data / "outside-secret.yaml"
    outside.write_text(f"workflow:\n  name: {SECRET}\n  steps: []\n")
    folder = served.data / "pipelines" / str(mallory.user_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "planted.yaml").symlink_to(outside)
    client = await connect(served, mallory)
    try:
        await _send(client, LIB, "load", {}, "/pipelines")  # picks up drafts in the folder
        for trick in [*TRICKS, "planted"]:
            for key in ("shipped", "name"):
                await _send(client, ED, "load", {}, f"/pipelines/edit?{key}={trick}")
                assert client.var(ED, "name") == "", (key, trick)
                await _send(client, ED, "export", {}, f"/pipelines/edit?{key}={trick}")
            await _send(client, LIB, "new_from_template", {"key": trick}, "/pipelines")
            for handler in ("export", "duplicate", "delete"):
                await _send(client, LIB, handler, {"name": trick}, "/pipelines")
        seen = "\n".join(_received(client) + _downloads(client))
        assert SECRET not in seen and "app_name" not in seen and "root:x:" not in seen
        assert _bad_frames(client) == []
    finally:
        await client.close()
    upload = await _upload(served, mallory, "planted.yaml", b"workflow: {name: o, steps: []}\n")
    assert upload.status_code < 500
    assert outside.read_text() == f"workflow:\n  name: {SECRET}\n  steps: []\n"
    names = _db(served, "select name from pipeline_doc where user_id = ?", mallory.user_id)
    assert ("planted",) not in names
    stray = [p for p in served.data.rglob("*.yaml") if p.parent.parent != served.data / "pipelines"]
    assert stray == [outside]


async def _upload(served: Served, account: Account, filename: str, data: bytes) -> httpx.Response:
    """POST a file to the library's import handler from a live tab of ``account``."""
    client = await connect(served, account)
    try:
        await _settled(client, "/pipelines")
        headers = {
            "Reflex-Client-Token": client.token,
            "Reflex-Event-Handler": f"{LIB}.import_files",
            "Cookie": account.cookie,
        }
        files = {"files": (filename, data, "application/x-yaml")}
        async with httpx.AsyncClient(timeout=300) as http:
            return await http.post(f"{served.url}/_upload", files=files, headers=headers)
    finally:
        await client.close()


async def test_import_refuses_oversized_binary_and_bomb_files_cleanly(
    served: Served, mallory: Account
) -> None:
    before = _db(served, "select count(*) from pipeline_doc where user_id = ?", mallory.user_id)
    for filename, data in [
        ("big.yaml", b"# " + b"x" * 2_000_000),
        ("binary.yaml", b"\xff\xfe\x00\x01" * 1000),
        ("bomb.yaml", _bomb(9).encode()),
        ("deep.yaml", b"workflow: " + b"[" * 5000 + b"]" * 5000),
    ]:
        resp = await _upload(served, mallory, filename, data)
        assert resp.status_code < 500 and "Traceback" not in resp.text, filename
        if filename in ("big.yaml", "binary.yaml"):
            assert '"error_rx_state_": ""' not in resp.text, filename  # a clear refusal
    after = _db(served, "select count(*) from pipeline_doc where user_id = ?", mallory.user_id)
    assert after[0][0] - before[0][0] <= 2  # at most the bomb and the deep file, with errors
    assert all((_doc(served, mallory, n, "errors") or 1) >= 1 for n in ("bomb", "deep"))


# --- forged payloads with a pipeline open and a step selected -----------------------------

ONE_MB = "x" * (1024 * 1024)
FORGED: list[Any] = [
    None,
    10**30,
    -1,
    3.5,
    True,
    float("nan"),
    float("inf"),
    "",
    "\x00",
    "\u202e²",
    ONE_MB,
    {"a": [1, {"b": None}]},
    [1, 2],
    ["s0"],
    {"step_name": None},
]


def _forged_calls(value: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (ED, "select_node", {"node_id": "s0"}),
        (ED, "set_field", {"key": "claude_options.max_turns", "value": value}),
        (ED, "set_field", {"key": "claude_options.allowed_tools", "value": value}),
        (ED, "set_field", {"key": "condition", "value": value}),
        (ED, "set_field", {"key": value, "value": "1"}),
        (ED, "set_part", {"index": 0, "value": value}),
        (ED, "set_part", {"index": value, "value": "a"}),
        (ED, "add_part", {"part_type": value}),
        (ED, "remove_part", {"index": value}),
        (ED, "rename_node", {"form_data": {"step_name": value}}),
        (ED, "rename_node", {"form_data": value}),
        (ED, "connect_nodes", {"source": value, "target": "s1"}),
        (ED, "node_dragged", {"node_id": "s0", "x": value, "y": value, "index": 0}),
        (ED, "node_dragged", {"node_id": "s0", "x": 1, "y": 2, "index": value}),
        (ED, "add_step", {"step_type": value}),
        (ED, "delete_node", {"node_id": value}),
        (ED, "yaml_changed", {"text": value}),
        (VER, "save", {"form_data": {"version_name": value, "version_message": value}}),
        (VER, "choose", {"number": value}),
        (VER, "diff", {}),
        (VER, "rollback", {}),
        (RUN, "show_step", {"node_id": value}),
        (RUN, "run", {"form_data": value}),
        (RUN, "stop", {}),
    ]


async def test_forged_payloads_on_an_open_pipeline_fail_cleanly(
    served: Served, mallory: Account
) -> None:
    """The matrix battery calls the editor with nothing open (most handlers return early);
    here every handler gets every forged value with a pipeline open and a step selected."""
    log_start = served.log.stat().st_size
    client, page, name = await _own_pipeline(served, mallory, _steps(2))
    try:
        for value in FORGED:
            await _send(client, ED, "yaml_changed", {"text": _steps(2)}, page)
            for state, handler, payload in _forged_calls(value):
                await client.emit(f"{state}.{handler}", payload, page)
            await _settled(client, page)
        assert _bad_frames(client) == []
        assert client.sio is not None and client.sio.connected
    finally:
        await client.close()
    with served.log.open("rb") as log:
        log.seek(log_start)
        tail = log.read().decode(errors="replace")
    assert "event handler failed" not in tail and "Traceback" not in tail
    assert len(_doc(served, mallory, name, "draft_yaml")) <= 1_000_000


async def test_yaml_bombs_typed_in_the_editor_are_reported_not_expanded(
    served: Served, mallory: Account
) -> None:
    client, page, _ = await _own_pipeline(served, mallory)
    try:
        bomb = _bomb(9).replace("a0: &a0", "workflow:\n  name: b\n  steps: []\n  x: &a0", 1)
        for text, words in [
            (bomb, "alias"),
            ("workflow: " + "[" * 5000 + "]" * 5000, "nest"),
            ("workflow:\n  name: " + "y" * 900_000 + "\n  steps: []\n", ""),
            ("workflow: !!python/object/apply:os.system [id]\n", "tag"),
        ]:
            await _send(client, ED, "yaml_changed", {"text": text}, page)
            messages = " ".join(p["message"] for p in client.var(ED, "problems") or [])
            assert words in messages.lower(), (text[:40], messages[:300])
        assert _bad_frames(client) == []
    finally:
        await client.close()


# --- freezes: the event loop and the database threads ------------------------------------


async def test_an_alias_bomb_in_an_inspector_field_freezes_no_one(
    served: Served, mallory: Account, bob: Account
) -> None:
    """Finding 1 (fixed in 8459167): ``view.coerce`` read a list/object field with a bare
    ``yaml.safe_load`` and ``json.dumps``-ed it on the event loop: 363 bytes, 10**7 strings."""
    client, page, _ = await _own_pipeline(served, mallory, _steps(1))
    try:
        await _send(client, ED, "select_node", {"node_id": "s0"}, page)
        before = client.var(ED, "revision")

        async def bomb() -> float:
            value = _bomb(7)
            payload = {"key": "claude_options.allowed_tools", "value": value}
            await client.emit(f"{ED}.set_field", payload, page)
            return await _settled(client, page)

        held = await _held_pings(served, bob, bomb)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
        assert client.var(ED, "revision") == before and client.var(ED, "error")  # refused
    finally:
        await client.close()


@pytest.mark.xfail(strict=True, reason="finding 2")
async def test_diffing_two_long_versions_freezes_no_one(
    served: Served, mallory: Account, bob: Account
) -> None:
    """``diff_stats`` (difflib, superquadratic on repeated lines) runs on the event loop."""
    client, page, _ = await _own_pipeline(served, mallory)
    try:
        for text in ("- a\n" * 4000, "- b\n" + "- a\n" * 4000):
            await _send(client, ED, "yaml_changed", {"text": text}, page)
            await _send(client, VER, "save", {"form_data": {}}, page)
        newest = max(v["number"] for v in client.var(VER, "versions"))
        await _send(client, VER, "choose", {"number": newest - 1}, page)

        async def diff() -> float:
            await client.emit(f"{VER}.diff", {}, page)
            return await _settled(client, page)

        held = await _held_pings(served, bob, diff)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
    finally:
        await client.close()


@pytest.mark.xfail(strict=True, reason="finding 4")
async def test_four_tabs_of_one_user_cannot_stall_every_other_user(
    served: Served, mallory: Account, bob: Account
) -> None:
    """Parsing, validation and the graph run on the 4-thread database pool that every event's
    identity check also needs; 3,000 steps named alike cost O(n²) in ``editor/tree._unique``."""
    first, page, _ = await _own_pipeline(served, mallory)
    tabs = [first, *[await _reopen(served, mallory, page) for _ in range(3)]]
    try:

        async def four() -> float:
            for tab in tabs:
                await tab.emit(f"{ED}.yaml_changed", {"text": _steps(3000, "dup")}, page)
            return min(await asyncio.gather(*[_settled(tab, page) for tab in tabs]))

        held = await _held_pings(served, bob, four)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
    finally:
        for tab in tabs:
            await tab.close()


@pytest.mark.xfail(strict=True, reason="finding 3")
async def test_starting_a_run_of_a_large_pipeline_freezes_no_one(
    served: Served, mallory: Account, bob: Account
) -> None:
    """``run_for_user`` reads and parses the file (``load_file``) and ``run_pipeline``
    validates it (``ensure_valid``) on the event loop."""
    client, page, name = await _own_pipeline(served, mallory, _steps(8000))
    try:
        await _send(client, VER, "save", {"form_data": {}}, page)

        async def start() -> None:
            await client.emit(f"{RUN}.run", {"form_data": {}}, page)
            await client.wait_for(lambda: client.var(RUN, "run_status") == "running", 300)

        held = await _held_pings(served, bob, start)
        await _send(client, RUN, "stop", {}, page)
        await _wait_runs_over(served, mallory, name)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
    finally:
        await client.close()


@pytest.mark.xfail(strict=True, reason="finding 11")
async def test_one_users_slow_edit_does_not_hold_back_another_users_edits(
    served: Served, mallory: Account, alice: Account
) -> None:
    """Every graph and inspector edit of every user goes through ``workbench._DOCS``: one
    process-wide lock, held while a document is parsed and edited (~6 s for 1 MB). The
    victim's pings wait as long with an edit before each as without (the same slow edit,
    uncached, runs during both)."""
    client, page, _ = await _own_pipeline(served, mallory)
    victim, victim_page, _ = await _own_pipeline(served, alice, _steps(1))
    await victim.close()
    held = {}
    try:
        for each in (None, (f"{ED}.add_step", {"step_type": "claude"})):
            text = f"# {each is None}\n" + _steps(7900)  # a text the editor has not cached
            await _send(client, ED, "yaml_changed", {"text": text}, page)
            await _send(client, ED, "select_node", {"node_id": "s7899"}, page)

            async def slow_edit() -> None:
                await client.emit(f"{ED}.set_field", {"key": "condition", "value": "x"}, page)
                await _settled(client, page)

            held[each is None] = await _held_pings(served, alice, slow_edit, victim_page, each)
    finally:
        await client.close()
    assert held[False] <= held[True] + 3, f"edits held {held[False]}, plain pings {held[True]}"


# --- runs, floods -----------------------------------------------------------------------


@pytest.mark.xfail(strict=True, reason="finding 8")
async def test_one_tab_runs_one_pipeline_at_a_time(served: Served, mallory: Account) -> None:
    """``run`` marks the tab running, then saves and starts the run outside the lock;
    ``prepare`` in between clears the mark (``self._run_id in _TASKS`` is still false)."""
    client, page, name = await _own_pipeline(served, mallory, _steps(400))
    count = "select count(*) from run where pipeline_id = ?"
    try:
        for _ in range(3):
            await client.emit(f"{RUN}.run", {"form_data": {}}, page)
            await client.emit(f"{RUN}.prepare", {}, page)
        await client.emit(f"{RUN}.run", {"form_data": {}}, page)
        await _settled(client, page)
        doc = _doc(served, mallory, name)
        for _ in range(240):  # the runs save the text first, then start
            if _db(served, count, doc)[0][0]:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        await _wait_runs_over(served, mallory, name)
    finally:
        await client.close()
    runs = _db(served, count, doc)[0][0]
    assert runs == 1, f"{runs} runs from one tab"


@pytest.mark.xfail(strict=True, reason="finding 10")
async def test_positions_are_kept_only_for_steps_that_exist(
    served: Served, mallory: Account
) -> None:
    client, page, name = await _own_pipeline(served, mallory, _steps(1))
    try:
        for i in range(50):
            ghost = {"node_id": f"ghost{i}-" + "g" * 480, "x": 1.0, "y": 2.0, "index": 0}
            await client.emit(f"{ED}.node_dragged", ghost, page)
        await _settled(client, page)
    finally:
        await client.close()
    assert "ghost" not in str(_doc(served, mallory, name, "layout"))


@pytest.mark.xfail(strict=True, reason="finding 9")
async def test_a_burst_of_saves_is_not_stored_without_limit(
    served: Served, mallory: Account
) -> None:
    """Every save is a new version row (up to 1 MB each) and a file write; no cap, no rate."""
    client, page, name = await _own_pipeline(served, mallory)
    burst, errors = 300, set()
    try:
        for i in range(burst):
            await client.emit(f"{ED}.yaml_changed", {"text": f"# {i}\n" + "#" * 20_000}, page)
            await client.emit(f"{VER}.save", {"form_data": {"version_name": str(i)}}, page)
            if i % 50 == 49:
                await _settled(client, page)
                errors.add(client.var(VER, "error"))
        await _settled(client, page)
    finally:
        await client.close()
    sql = "select count(*) from pipeline_version where pipeline_id = ?"
    stored = _db(served, sql, _doc(served, mallory, name))[0][0]
    assert stored < burst and errors - {""}, f"{stored} versions stored, no refusal"


# --- complexity (in process, no clock: executed lines counted) ----------------------------


def _lines_run(fn: Callable[[], object], filename: str) -> int:
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename.endswith(filename):
            if event == "line":
                count += 1
            return trace
        return None

    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


@pytest.mark.xfail(strict=True, reason="finding 5")
def test_the_step_walk_is_linear_in_steps_named_alike() -> None:
    from elexirion_app.editor.tree import walk
    from elexirion_app.pipelines.loader import load_text

    def work(n: int) -> int:
        data = {"workflow": load_text(_steps(n, "dup")).workflow}
        return _lines_run(lambda: walk(data), "editor/tree.py")

    small, large = work(300), work(1200)
    assert large < 6 * small, f"4x the steps ran {large / small:.1f}x the lines"


@pytest.mark.xfail(strict=True, reason="finding 6")
def test_validation_is_linear_in_distinct_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_validate_steps`` rebuilds ``ctx.later`` (every name still to come) for each step."""
    from elexirion_app.pipelines.checks import context
    from elexirion_app.pipelines.loader import load_text
    from elexirion_app.pipelines.validate import validate_document

    entries = 0

    def counting(self: object, name: str, value: object) -> None:
        nonlocal entries
        if name in ("earlier", "later") and isinstance(value, dict):
            entries += len(value)
        object.__setattr__(self, name, value)

    monkeypatch.setattr(context.Ctx, "__setattr__", counting)

    def work(n: int) -> int:
        nonlocal entries
        entries = 0
        validate_document(load_text(_steps(n)))
        return entries

    small, large = work(300), work(1200)
    assert large < 6 * small, f"4x the steps copied {large / small:.1f}x the name entries"


# --- XSS: what a pipeline holds is shown as text ------------------------------------------

XSS = """\
# <script>window.__xss = 1</script>
workflow:
  name: "<img src=x onerror=window.__xss=2>"
  steps:
    - name: "x<img src=x onerror=window.__xss=3>"
      type: "<svg onload=window.__xss=4>"
      model: "<img src=x onerror=window.__xss=5>"
      prompt:
        - type: static
          content: "<script>window.__xss = 6</script>{{steps.<b>nope</b>.text}}"
"""
INJECTED = "img[src='x'], svg[onload], [onerror], script:not([src]):not([type])"


async def test_markup_in_a_pipeline_renders_as_text_in_the_editor(
    served: Served, mallory: Account
) -> None:
    from playwright.async_api import async_playwright

    client, page, _ = await _own_pipeline(served, mallory, XSS)
    try:
        await _send(client, VER, "save", {"form_data": {"version_name": "<i>one</i>"}}, page)
        await _send(client, ED, "yaml_changed", {"text": XSS.replace("= 6", "= 7")}, page)
        await _send(client, VER, "save", {"form_data": {"version_message": "<b>two</b>"}}, page)
        newest = max(v["number"] for v in client.var(VER, "versions"))
    finally:
        await client.close()
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context()
            await context.add_cookies(
                [{"name": "elx_session", "value": mallory.token, "url": served.url}]
            )
            tab = await context.new_page()
            inline_before = await _inline_scripts(tab, f"{served.url}/chat")
            await tab.goto(served.url + page)
            await tab.wait_for_selector("#hydrated", state="attached", timeout=60_000)
            await tab.wait_for_selector("#pipeline-graph [data-step]", timeout=60_000)
            await tab.click("#pipeline-graph [data-step]")
            await tab.click(f'#versions [data-version="{newest - 1}"]')
            await tab.click("#version-diff")
            await tab.wait_for_selector("#problems [data-problem-line]", timeout=30_000)
            await tab.wait_for_timeout(1000)
            assert await tab.evaluate("typeof window.__xss") == "undefined"
            assert await tab.locator(INJECTED).count() == inline_before
            shown = await tab.inner_text("body")
            assert "<svg onload=window.__xss=4>" in shown and "<img src=x" in shown
        finally:
            await browser.close()


async def _inline_scripts(tab: Any, url: str) -> int:
    """Inline scripts (and other matches) the app's own pages have, without any pipeline."""
    await tab.goto(url)
    await tab.wait_for_selector("#hydrated", state="attached", timeout=60_000)
    return int(await tab.locator(INJECTED).count())
