"""Attacks on the pipeline library and editor (issue 8), against an app served for them
alone (``editor_app``: own port, data and registration allowance): a second user with the
first user's names, run ids and tab token; path tricks in names and shipped keys; imports of
oversized, binary and bomb files; forged payloads with a pipeline open; YAML bombs typed in
the editor; XSS payloads in a real browser. Freezes and floods: test_editor_freezes.py.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import httpx

from tests.security.conftest import Account, Served, connect
from tests.security.editor_attack_kit import (
    ED,
    LIB,
    RUN,
    RUNS,
    SECRET,
    VER,
    bad_frames,
    bomb,
    db,
    doc,
    downloads,
    own_pipeline,
    received,
    send,
    settled,
    steps,
    wait_runs_over,
)

# --- a second user ------------------------------------------------------------------------


async def test_second_user_gets_nothing_of_the_first_users_pipeline_versions_runs_or_trace(
    editor_app: Served, owner: Account, other: Account
) -> None:
    tab, page, name = await own_pipeline(editor_app, owner, steps(3))
    try:
        await send(tab, VER, "save", {"form_data": {"version_name": SECRET}}, page)
        await tab.emit(f"{RUN}.run", {"form_data": {}}, page)
        await tab.wait_for(lambda: tab.var(RUN, "running") is True, 30)
        await tab.wait_for(lambda: tab.var(RUN, "running") is False, 120)
    finally:
        await tab.close()
    newest = "select id from run where user_id = ? order by created_at desc"
    run_id = db(editor_app, newest, owner.user_id)[0][0]
    thief = await connect(editor_app, other)
    try:
        for target in (f"/pipelines/edit?name={name}", f"/pipelines/edit?shipped={name}"):
            await send(thief, ED, "load", {}, target)
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
                await send(thief, state, handler, payload, target)
        for handler in ("export", "duplicate", "delete"):
            await send(thief, LIB, handler, {"name": name}, "/pipelines")
        await send(thief, RUNS, "load_trace", {}, f"/runs/trace?id={run_id}")
        await send(thief, RUNS, "load_detail", {}, f"/runs/view?id={run_id}")
        assert thief.var(RUNS, "trace_items") == [] and thief.var(RUNS, "steps") == []
        seen = "\n".join(received(thief) + downloads(thief))
        assert SECRET not in seen and run_id not in seen and owner.email not in seen
        assert bad_frames(thief) == []
    finally:
        await thief.close()
    assert doc(editor_app, owner, name) is not None


async def test_a_run_ending_after_its_tab_changed_hands_shows_the_new_user_nothing(
    editor_app: Served, owner: Account, other: Account
) -> None:
    """Alice starts a run and leaves; Bob logs in on the same browser tab (same tab token).
    Finding 7 (fixed in 8459167): the run's status, cost and history went to Bob's tab."""
    tab, page, name = await own_pipeline(editor_app, owner, steps(800))
    await tab.emit(f"{RUN}.run", {"form_data": {}}, page)
    await tab.wait_for(lambda: tab.var(RUN, "running") is True, 60)
    token = tab.token
    await tab.close()
    successor = await connect(editor_app, other, token)
    try:
        await wait_runs_over(editor_app, owner, name)
        with contextlib.suppress(TimeoutError):  # the run's last words come after its row
            await successor.wait_for(lambda: bool(successor.var(RUN, "history")), 10)
        runs = [r for (r,) in db(editor_app, "select id from run where user_id = ?", owner.user_id)]
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
    editor_app: Served, mallory: Account
) -> None:
    outside = editor_app.data / "outside-secret.yaml"
    outside.write_text(f"workflow:\n  name: {SECRET}\n  steps: []\n")
    folder = editor_app.data / "pipelines" / str(mallory.user_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "planted.yaml").symlink_to(outside)
    client = await connect(editor_app, mallory)
    try:
        await send(client, LIB, "load", {}, "/pipelines")  # picks up drafts in the folder
        for trick in [*TRICKS, "planted"]:
            for key in ("shipped", "name"):
                await send(client, ED, "load", {}, f"/pipelines/edit?{key}={trick}")
                assert client.var(ED, "name") == "", (key, trick)
                await send(client, ED, "export", {}, f"/pipelines/edit?{key}={trick}")
            await send(client, LIB, "new_from_template", {"key": trick}, "/pipelines")
            for handler in ("export", "duplicate", "delete"):
                await send(client, LIB, handler, {"name": trick}, "/pipelines")
        seen = "\n".join(received(client) + downloads(client))
        assert SECRET not in seen and "app_name" not in seen and "root:x:" not in seen
        assert bad_frames(client) == []
    finally:
        await client.close()
    upload = await _upload(editor_app, mallory, "planted.yaml", b"workflow: {name: o, steps: []}\n")
    assert upload.status_code < 500
    assert outside.read_text() == f"workflow:\n  name: {SECRET}\n  steps: []\n"
    names = db(editor_app, "select name from pipeline_doc where user_id = ?", mallory.user_id)
    assert ("planted",) not in names
    stray = [
        p
        for p in editor_app.data.rglob("*.yaml")
        if p.parent.parent != editor_app.data / "pipelines"
    ]
    assert stray == [outside]


async def _upload(
    editor_app: Served, account: Account, filename: str, data: bytes
) -> httpx.Response:
    """POST a file to the library's import handler from a live tab of ``account``."""
    client = await connect(editor_app, account)
    try:
        await settled(client, "/pipelines")
        headers = {
            "Reflex-Client-Token": client.token,
            "Reflex-Event-Handler": f"{LIB}.import_files",
            "Cookie": account.cookie,
        }
        files = {"files": (filename, data, "application/x-yaml")}
        async with httpx.AsyncClient(timeout=300) as http:
            return await http.post(f"{editor_app.url}/_upload", files=files, headers=headers)
    finally:
        await client.close()


async def test_import_refuses_oversized_binary_and_bomb_files_cleanly(
    editor_app: Served, mallory: Account
) -> None:
    before = db(editor_app, "select count(*) from pipeline_doc where user_id = ?", mallory.user_id)
    for filename, data in [
        ("big.yaml", b"# " + b"x" * 2_000_000),
        ("binary.yaml", b"\xff\xfe\x00\x01" * 1000),
        ("bomb.yaml", bomb(9).encode()),
        ("deep.yaml", b"workflow: " + b"[" * 5000 + b"]" * 5000),
    ]:
        resp = await _upload(editor_app, mallory, filename, data)
        assert resp.status_code < 500 and "Traceback" not in resp.text, filename
        if filename in ("big.yaml", "binary.yaml"):
            assert '"error_rx_state_": ""' not in resp.text, filename  # a clear refusal
    after = db(editor_app, "select count(*) from pipeline_doc where user_id = ?", mallory.user_id)
    assert after[0][0] - before[0][0] <= 2  # at most the bomb and the deep file, with errors
    assert all((doc(editor_app, mallory, n, "errors") or 1) >= 1 for n in ("bomb", "deep"))


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
    editor_app: Served, mallory: Account
) -> None:
    """The matrix battery calls the editor with nothing open (most handlers return early);
    here every handler gets every forged value with a pipeline open and a step selected."""
    log_start = editor_app.log.stat().st_size
    client, page, name = await own_pipeline(editor_app, mallory, steps(2))
    try:
        for value in FORGED:
            await send(client, ED, "yaml_changed", {"text": steps(2)}, page)
            for state, handler, payload in _forged_calls(value):
                await client.emit(f"{state}.{handler}", payload, page)
            await settled(client, page)
        assert bad_frames(client) == []
        assert client.sio is not None and client.sio.connected
    finally:
        await client.close()
    with editor_app.log.open("rb") as log:
        log.seek(log_start)
        tail = log.read().decode(errors="replace")
    assert "event handler failed" not in tail and "Traceback" not in tail
    assert len(doc(editor_app, mallory, name, "draft_yaml")) <= 1_000_000


async def test_yaml_bombs_typed_in_the_editor_are_reported_not_expanded(
    editor_app: Served, mallory: Account
) -> None:
    client, page, _ = await own_pipeline(editor_app, mallory)
    try:
        typed = bomb(9).replace("a0: &a0", "workflow:\n  name: b\n  steps: []\n  x: &a0", 1)
        for text, words in [
            (typed, "alias"),
            ("workflow: " + "[" * 5000 + "]" * 5000, "nest"),
            ("workflow:\n  name: " + "y" * 900_000 + "\n  steps: []\n", ""),
            ("workflow: !!python/object/apply:os.system [id]\n", "tag"),
        ]:
            await send(client, ED, "yaml_changed", {"text": text}, page)
            messages = " ".join(p["message"] for p in client.var(ED, "problems") or [])
            assert words in messages.lower(), (text[:40], messages[:300])
        assert bad_frames(client) == []
    finally:
        await client.close()


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
    editor_app: Served, mallory: Account
) -> None:
    from playwright.async_api import async_playwright

    client, page, _ = await own_pipeline(editor_app, mallory, XSS)
    try:
        await send(client, VER, "save", {"form_data": {"version_name": "<i>one</i>"}}, page)
        await send(client, ED, "yaml_changed", {"text": XSS.replace("= 6", "= 7")}, page)
        await send(client, VER, "save", {"form_data": {"version_message": "<b>two</b>"}}, page)
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
                [{"name": "elx_session", "value": mallory.token, "url": editor_app.url}]
            )
            tab = await context.new_page()
            inline_before = await _inline_scripts(tab, f"{editor_app.url}/chat")
            await tab.goto(editor_app.url + page)
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
    """Inline scripts (and other matches) the editor_app's own pages have, without any pipeline."""
    await tab.goto(url)
    await tab.wait_for_selector("#hydrated", state="attached", timeout=60_000)
    return int(await tab.locator(INJECTED).count())
