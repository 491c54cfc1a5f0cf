"""Freezes and floods against the editor (issue 8 attacker findings 1-4, 8-11), on the
battery's own app (``editor_app``). Freezes are shown by order, not durations: while the
attacker's work runs, a victim tab sends a ping every 100 ms, and the test counts how many
later pings were sent before the most delayed ping was answered (a free server answers each
before the next leaves; a blocked event loop or a full database pool holds all).
The in-process complexity checks (findings 5, 6) are unit tests (tests/unit/editor,
tests/unit/pipelines).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.security.conftest import Account, Served
from tests.security.editor_attack_kit import (
    ED,
    RUN,
    VER,
    bomb,
    db,
    doc,
    held_pings,
    own_pipeline,
    reopen,
    send,
    settled,
    steps,
    wait_runs_over,
)

# --- freezes: the event loop and the database threads ------------------------------------


async def test_an_alias_bomb_in_an_inspector_field_freezes_no_one(
    editor_app: Served, mallory: Account, other: Account
) -> None:
    """Finding 1 (fixed in 8459167): ``view.coerce`` read a list/object field with a bare
    ``yaml.safe_load`` and ``json.dumps``-ed it on the event loop: 363 bytes, 10**7 strings."""
    client, page, _ = await own_pipeline(editor_app, mallory, steps(1))
    try:
        await send(client, ED, "select_node", {"node_id": "s0"}, page)
        before = client.var(ED, "revision")

        async def field_bomb() -> float:
            value = bomb(7)
            payload = {"key": "claude_options.allowed_tools", "value": value}
            await client.emit(f"{ED}.set_field", payload, page)
            return await settled(client, page)

        held = await held_pings(editor_app, other, field_bomb)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
        assert client.var(ED, "revision") == before and client.var(ED, "error")  # refused
    finally:
        await client.close()


async def test_diffing_two_long_versions_freezes_no_one(
    editor_app: Served, mallory: Account, other: Account
) -> None:
    """Finding 2: ``diff_stats`` (difflib, superquadratic on repeated lines) ran on the event
    loop; now the diff runs on the CPU pool, bounded (common head and tail matched first)."""
    client, page, _ = await own_pipeline(editor_app, mallory)
    try:
        for text in ("- a\n" * 4000, "- b\n" + "- a\n" * 4000):
            await send(client, ED, "yaml_changed", {"text": text}, page)
            await send(client, VER, "save", {"form_data": {}}, page)
        newest = max(v["number"] for v in client.var(VER, "versions"))
        await send(client, VER, "choose", {"number": newest - 1}, page)

        async def diff() -> float:
            await client.emit(f"{VER}.diff", {}, page)
            return await settled(client, page)

        held = await held_pings(editor_app, other, diff)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
    finally:
        await client.close()


async def test_four_tabs_of_one_user_cannot_stall_every_other_user(
    editor_app: Served, mallory: Account, other: Account
) -> None:
    """Findings 4, 5: parsing, validation and the graph ran on the 4-thread database pool that
    every event's identity check also needs (now: the CPU pool, one job per user at a time);
    3,000 steps named alike cost O(n²) in ``editor/tree._unique`` (now linear)."""
    first, page, _ = await own_pipeline(editor_app, mallory)
    tabs = [first, *[await reopen(editor_app, mallory, page) for _ in range(3)]]
    try:

        async def four() -> float:
            for tab in tabs:
                await tab.emit(f"{ED}.yaml_changed", {"text": steps(3000, "dup")}, page)
            return min(await asyncio.gather(*[settled(tab, page) for tab in tabs]))

        held = await held_pings(editor_app, other, four)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
    finally:
        for tab in tabs:
            await tab.close()


async def test_starting_a_run_of_a_large_pipeline_freezes_no_one(
    editor_app: Served, mallory: Account, other: Account
) -> None:
    """Finding 3: ``run_for_user`` read and parsed the file (``load_file``) and
    ``run_pipeline`` validated it (``ensure_valid``) on the event loop (now: the CPU pool)."""
    client, page, name = await own_pipeline(editor_app, mallory, steps(8000))
    try:
        await send(client, VER, "save", {"form_data": {}}, page)

        async def start() -> None:
            await client.emit(f"{RUN}.run", {"form_data": {}}, page)
            await client.wait_for(lambda: client.var(RUN, "run_status") == "running", 300)

        held = await held_pings(editor_app, other, start)
        await send(client, RUN, "stop", {}, page)
        await wait_runs_over(editor_app, mallory, name)
        assert held <= 3, f"another user's ping waited while {held} more were sent"
    finally:
        await client.close()


@pytest.mark.xfail(
    strict=False,
    reason="finding 11, partly: the process-wide edit lock is gone (tests/unit/editor/"
    "test_workbench_cache.py), yet the victim's edits still wait 2-3x longer than their plain "
    "pings while a 1 MB document is edited (GIL contention of the CPU threads is the lead); "
    "not strict: the figure varies from run to run",
)
async def test_one_users_slow_edit_does_not_hold_back_another_users_edits(
    editor_app: Served, mallory: Account, owner: Account
) -> None:
    """Every graph and inspector edit of every user goes through ``workbench._DOCS``: one
    process-wide lock, held while a document is parsed and edited (~6 s for 1 MB). The
    victim's pings wait as long with an edit before each as without (the same slow edit,
    uncached, runs during both)."""
    client, page, _ = await own_pipeline(editor_app, mallory)
    victim, victim_page, _ = await own_pipeline(editor_app, owner, steps(1))
    await victim.close()
    held = {}
    try:
        for each in (None, (f"{ED}.add_step", {"step_type": "claude"})):
            text = f"# {each is None}\n" + steps(7900)  # a text the editor has not cached
            await send(client, ED, "yaml_changed", {"text": text}, page)
            await send(client, ED, "select_node", {"node_id": "s7899"}, page)

            async def slow_edit() -> None:
                await client.emit(f"{ED}.set_field", {"key": "condition", "value": "x"}, page)
                await settled(client, page)

            held[each is None] = await held_pings(editor_app, owner, slow_edit, victim_page, each)
    finally:
        await client.close()
    assert held[False] <= held[True] + 3, f"edits held {held[False]}, plain pings {held[True]}"


# --- runs, floods -----------------------------------------------------------------------


async def test_one_tab_runs_one_pipeline_at_a_time(editor_app: Served, mallory: Account) -> None:
    """Finding 8: ``run`` marked the tab running, then saved and started the run outside the
    lock; ``prepare`` in between cleared the mark (now the run is registered at once)."""
    client, page, name = await own_pipeline(editor_app, mallory, steps(400))
    count = "select count(*) from run where pipeline_id = ?"
    try:
        for _ in range(3):
            await client.emit(f"{RUN}.run", {"form_data": {}}, page)
            await client.emit(f"{RUN}.prepare", {}, page)
        await client.emit(f"{RUN}.run", {"form_data": {}}, page)
        await settled(client, page)
        doc_id = doc(editor_app, mallory, name)
        for _ in range(240):  # the runs save the text first, then start
            if db(editor_app, count, doc_id)[0][0]:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        await wait_runs_over(editor_app, mallory, name)
    finally:
        await client.close()
    runs = db(editor_app, count, doc_id)[0][0]
    assert runs == 1, f"{runs} runs from one tab"


async def test_positions_are_kept_only_for_steps_that_exist(
    editor_app: Served, mallory: Account
) -> None:
    client, page, name = await own_pipeline(editor_app, mallory, steps(1))
    try:
        for i in range(50):
            ghost = {"node_id": f"ghost{i}-" + "g" * 480, "x": 1.0, "y": 2.0, "index": 0}
            await client.emit(f"{ED}.node_dragged", ghost, page)
        await settled(client, page)
    finally:
        await client.close()
    assert "ghost" not in str(doc(editor_app, mallory, name, "layout"))


async def test_a_burst_of_saves_is_not_stored_without_limit(
    editor_app: Served, mallory: Account
) -> None:
    """Finding 9: every save was a new version row (up to 1 MB each) and a file write; now at
    most ``MAX_VERSIONS_PER_MINUTE`` per pipeline, refused with a message past that."""
    client, page, name = await own_pipeline(editor_app, mallory)
    burst, errors = 300, set()
    try:
        for i in range(burst):
            await client.emit(f"{ED}.yaml_changed", {"text": f"# {i}\n" + "#" * 20_000}, page)
            await client.emit(f"{VER}.save", {"form_data": {"version_name": str(i)}}, page)
            if i % 50 == 49:
                await settled(client, page)
                errors.add(client.var(VER, "error"))
        await settled(client, page)
    finally:
        await client.close()
    sql = "select count(*) from pipeline_version where pipeline_id = ?"
    stored = db(editor_app, sql, doc(editor_app, mallory, name))[0][0]
    assert stored < burst and errors - {""}, f"{stored} versions stored, no refusal"
