"""The editor against the served app (issue #8, performance items 2 and 3).

1. Bytes on the websocket per node move: a user's tab opens a 10-step and a 200-step pipeline
   (``EditorState.load``) and sends ``node_dragged`` for nodes that keep their place among
   their siblings (the browser component sends one such event per drag, at drag stop). Printed:
   bytes received per move on each pipeline and the ratio 200 ÷ 10 (goal ≤ 1.5). For
   comparison, a reorder (a node dropped at another place: the YAML and graph change) is
   printed too.
2. Keystroke → updated graph and problems in Chromium on the 200-step pipeline: type one
   character into a step's name in the YAML editor and wait until the graph shows the renamed
   node; then type a wrong step type and wait for its problem in ``#problems``. Median and
   p95 of each, with the editor's 250 ms debounce included (and printed apart).

    .venv/bin/python bench/editor_live.py [--moves 40] [--keys 15]

App on port 3176 (fresh SQLite database under a temporary folder); loopback only; the bench
stops by itself and kills only the process group it started. Progress to stderr, results to
stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import appserver  # noqa: E402
from tests.support.reflex_client import ReflexClient  # noqa: E402

PORT = 3176
DEBOUNCE_MS = 250
RATIO_GOAL = 1.5
P = "reflex___state____state.elexirion_app___web___state___"
EDITOR = P + "editor____editor_state"


def pipeline(steps: int) -> str:
    lines = [f"# A {steps}-step pipeline for the editor bench", "workflow:", f"  name: p{steps}"]
    lines.append("  steps:")
    for i in range(steps):
        lines += [
            f"    - name: step_{i}  # step {i}",
            "      type: claude",
            "      prompt:",
            "        - type: static",
            f'          content: "Do part {i} of the work."',
        ]
        if i and (i - 1) % 10 != 3:  # step_3, step_13, … are referenced by no one (renamed)
            lines += ["        - type: previous_response", f"          step: step_{i - 1}"]
    return "\n".join(lines) + "\n"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def register(url: str) -> tuple[str, int]:
    resp = httpx.post(
        f"{url}/auth/register",
        data={"email": f"b{uuid.uuid4().hex[:8]}@example.com", "password": "password-123"},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    return resp.cookies["elx_session"], int(resp.json()["user"]["id"])


def seed(data: Path, user_id: int) -> None:
    """The two pipelines, written through the library's own store (same database)."""
    import os

    os.environ["DATABASE_URL"] = f"sqlite:///{data / 'app.db'}"
    os.environ["ELEXIRION_DATA_DIR"] = str(data)
    from elexirion_app.config import get_settings
    from elexirion_app.db.engine import session_scope
    from elexirion_app.services import pipeline_store as store

    get_settings.cache_clear()
    with session_scope() as session:
        for n in (10, 200):
            store.create_pipeline(session, user_id, f"p{n}", pipeline(n), source="import")


async def move_bytes(url: str, token: str, name: str, moves: int) -> tuple[float, float]:
    """(bytes per position-only move, bytes per reorder) on one pipeline."""
    client = ReflexClient(url, cookie=f"elx_session={token}")
    await client.connect()
    page = f"/pipelines/edit?name={name}"
    try:
        await client.emit("reflex___state____state.hydrate", {}, page)
        await client.emit(f"{EDITOR}.load", {}, page)
        await client.wait_for(lambda: len(client.var(EDITOR, "nodes") or []) > 5, 60)
        await asyncio.sleep(1.5)
        results = []
        for reorder in (False, True):
            before_bytes, before_frames = client.bytes_received, client.frames_received
            for i in range(moves):
                index = (i % 3) if reorder else 1 + (i % 3)
                node = f"step_{1 + (i % 3)}"
                await client.emit(
                    f"{EDITOR}.node_dragged",
                    {"node_id": node, "x": 10.0 + i, "y": 20.0 + i, "index": index},
                    page,
                )
                target = before_frames + i + 1
                await client.wait_for(lambda t=target: client.frames_received >= t, 30)
            await asyncio.sleep(0.5)
            results.append((client.bytes_received - before_bytes) / moves)
        return results[0], results[1]
    finally:
        await client.close()


def typing_latency(url: str, token: str, keys: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    graph_ms: list[float] = []
    problem_ms: list[float] = []
    browser_ms: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
        # When the last websocket frame arrived (splits server time from browser time).
        ctx.add_init_script(
            "(() => { const W = window.WebSocket; window.WebSocket = function (...a) {"
            " const ws = new W(...a); ws.addEventListener('message', () => {"
            " window.__lastFrame = performance.now(); }); return ws; };"
            " window.WebSocket.prototype = W.prototype; Object.assign(window.WebSocket, W); })()"
        )
        ctx.add_cookies([{"name": "elx_session", "value": token, "url": url}])
        page = ctx.new_page()
        page.goto(f"{url}/pipelines/edit?name=p200")
        page.wait_for_selector("#hydrated", state="attached", timeout=60_000)
        page.wait_for_selector('[data-step="step_0"]', timeout=60_000)
        editor = page.locator("#yaml-editor .cm-content")
        for k in range(keys):
            # Rename step_3 by one character (a line CodeMirror has on screen: it renders only
            # the visible lines of a long document).
            line = page.locator("#yaml-editor .cm-line", has_text=f"- name: step_3{'x' * k}  #")
            line.click()
            page.keyboard.press("End")
            for _ in range(len("  # step 3")):
                page.keyboard.press("ArrowLeft")
            t0 = time.perf_counter()
            page.keyboard.type("x")
            page.wait_for_selector(f'[data-node-id="step_3{"x" * (k + 1)}"]', timeout=30_000)
            graph_ms.append((time.perf_counter() - t0) * 1000)
            after = page.evaluate("performance.now() - (window.__lastFrame || 0)")
            browser_ms.append(after)
            print(
                f"  keystroke {k + 1}/{keys}: graph {graph_ms[-1]:.0f} ms "
                f"(after the last frame: {after:.0f} ms)",
                file=sys.stderr,
            )
        for k in range(keys):
            wrong = f"claud{'e' * (k + 2)}"
            line = page.locator("#yaml-editor .cm-line", has_text="type: claude").nth(2)
            line.click()
            page.keyboard.press("End")
            t0 = time.perf_counter()
            page.keyboard.type("e" * (k + 1))
            page.wait_for_selector(f'#problems :text("{wrong}")', timeout=30_000)
            problem_ms.append((time.perf_counter() - t0) * 1000)
            for _ in range(k + 1):
                page.keyboard.press("Backspace")
            page.wait_for_selector("#no-problems", timeout=30_000)
        assert editor.count() == 1
        browser.close()
    return graph_ms, problem_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--keys", type=int, default=15)
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="elx-editor-bench-") as tmp:
        data = Path(tmp)
        limits = {"ELEXIRION_LIMIT_REGISTER_CLIENT": "1000/minute"}
        print("serving the app (build ~1-2 min)…", file=sys.stderr)
        with appserver.serving(data, args.port, **limits):
            url = f"http://localhost:{args.port}"
            token, user_id = register(url)
            seed(data, user_id)
            small = asyncio.run(move_bytes(url, token, "p10", args.moves))
            large = asyncio.run(move_bytes(url, token, "p200", args.moves))
            ratio = large[0] / small[0] if small[0] else float("inf")
            ok &= ratio <= RATIO_GOAL
            print("## Bytes received on the websocket per node drag (one event per drag)")
            print("| pipeline | move (same place) | reorder (YAML + graph change) |")
            print("| --- | ---: | ---: |")
            print(f"| 10 steps | {small[0]:,.0f} B | {small[1]:,.0f} B |")
            print(f"| 200 steps | {large[0]:,.0f} B | {large[1]:,.0f} B |")
            print(
                f"move 200 ÷ 10 = {ratio:.2f} (goal ≤ {RATIO_GOAL}: {'ok' if ratio <= RATIO_GOAL else 'MISSED'})"
            )
            print(
                f"reorder 200 ÷ 10 = {large[1] / small[1]:.1f} (the new YAML and graph are sent whole)"
            )
            graph_ms, problem_ms = typing_latency(url, token, args.keys)
            print()
            print("## Keystroke in the YAML editor → browser updated (200-step pipeline)")
            print(f"(includes the editor's {DEBOUNCE_MS} ms debounce; n = {args.keys} each)")
            print("| update | median | p95 | median − debounce |")
            print("| --- | ---: | ---: | ---: |")
            for label, values in (
                ("graph (renamed node)", graph_ms),
                ("problem listed", problem_ms),
            ):
                med = statistics.median(values)
                print(
                    f"| {label} | {med:.0f} ms | {pct(values, 0.95):.0f} ms | {med - DEBOUNCE_MS:.0f} ms |"
                )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
