"""The HTTP API under load (issue #9, performance).

A 3-step pipeline on the zero-latency offline model, started through ``POST
/api/pipeline/execute`` and followed through ``GET /api/runs/{id}/events`` (SSE) until its
``end`` event: the time from the POST to that event, for 1 client running runs one after the
other, then for 60 clients at once (several rounds). Printed: p50/p95 of both, the ratio
60-concurrent p95 ÷ single-client p95 (goal ≤ 3) and whether the 60-concurrent p95 is under
1 s — for the default setup (one worker, SQLite) and the scale-out one (two workers, PostgreSQL
127.0.0.1:5432 in a scratch database, Redis 127.0.0.1:6379 db 9), in one run. For comparison,
Dify users report a 3-node echo workflow taking ~1 s alone and ~8 s at 60 concurrent
requests (a reported figure: Dify is not installed here). Measured in the same run, the
**floor** (``bench/api_floor.py``): the same two requests per run against the same stack
(granian with the same worker count, FastAPI, sse-starlette) doing no work at all — no
database, engine or model — so its ratio is what this machine and client give before any of
our code runs. Also printed: the server's CPU time
per run in each phase (user + system time of every process of the served app, read from
/proc), the figure that bounds the 60-concurrent time on 2 cores.

Limits that would refuse the bench's own traffic are raised for the served app (and printed):
the per-user API rate, active runs per user, and the per-user queue of CPU jobs (10 clients
of one user start 10 runs at once; each run's YAML is parsed and validated as one CPU job of
its user, one at a time, at most 8 waiting by default). The work per run is the same.

    .venv/bin/python bench/api.py [--single 30] [--concurrent 60] [--rounds 3] [--port 3170]
                                  [--only sqlite|scaleout] [--no-floor]

The app is served (``reflex run --env prod``) on port 3170 from a fresh temporary folder; users
and keys are made with the operator CLI. Starting the app builds the frontend: that part holds
``/tmp/elx-build.lock`` (the lock every served-app test takes), the measurement does not.
Loopback only; the bench stops the process group it started. Progress to stderr, results to
stdout, with the load average (other jobs share the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import appserver  # noqa: E402

PIPELINE = """workflow:
  name: three_steps
  steps:
    - name: one
      type: claude
      prompt:
        - type: static
          content: "Echo: one"
    - name: two
      type: claude
      prompt:
        - type: static
          content: "Echo: two"
    - name: three
      type: claude
      prompt:
        - type: static
          content: "Echo: three"
"""
USERS = 6  # 60 concurrent runs from 6 users (10 each), as a team would send them
REDIS_URL = "redis://127.0.0.1:6379/9"
BUILD_LOCK = "/tmp/elx-build.lock"
RAISED_LIMITS = {
    "ELEXIRION_LIMIT_API_USER": "100000/minute",
    "ELEXIRION_MAX_ACTIVE_RUNS_PER_USER": "100",
    "ELEXIRION_CPU_QUEUE_PER_USER": "100",
}


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "elexirion_app", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout.strip()


async def _end_data(lines: AsyncIterator[str]) -> str:
    """The ``data:`` line of the stream's ``end`` event ("" if the stream ends without one)."""
    kind = ""
    async for line in lines:
        text = line.rstrip("\r\n")
        if text.startswith("event:"):
            kind = text[6:].strip()
        elif text.startswith("data:") and kind == "end":
            return text
    return ""


def _ended(run_id: str, status: str, start: float) -> float:
    elapsed = time.perf_counter() - start
    if "succeeded" not in status:
        raise RuntimeError(f"run {run_id} ended {status!r}")
    return elapsed


class HttpxRuns:
    """Runs through httpx (``--client httpx``). Its connection pool scans every connection
    on each request and release (httpcore's ``_assign_requests_to_connections``), so with 70
    pooled connections the client itself costs several ms of CPU per run on the cores the
    server needs: kept to compare with the figures measured with it before 2026-12-04."""

    def __init__(self, url: str, concurrent: int) -> None:
        limits = httpx.Limits(max_connections=concurrent + 10, max_keepalive_connections=concurrent)
        self._client = httpx.AsyncClient(base_url=url, timeout=120, limits=limits)

    async def __aenter__(self) -> HttpxRuns:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def run(self, key: str) -> float:
        client, auth = self._client, {"Authorization": f"Bearer {key}"}
        start = time.perf_counter()
        resp = await client.post("/api/pipeline/execute", json={"pipeline": PIPELINE}, headers=auth)
        resp.raise_for_status()
        run_id = resp.json()["run_id"]
        async with client.stream("GET", f"/api/runs/{run_id}/events", headers=auth) as events:
            status = await _end_data(events.aiter_lines())
        return _ended(run_id, status, start)


class AiohttpRuns:
    """Runs through aiohttp (the default client): the same two requests, a pooled keep-alive
    connection each, the SSE stream read line by line until its ``end`` event."""

    def __init__(self, url: str, concurrent: int) -> None:
        self._url = url
        self._concurrent = concurrent

    async def __aenter__(self) -> AiohttpRuns:
        connector = aiohttp.TCPConnector(limit=self._concurrent + 10)
        timeout = aiohttp.ClientTimeout(total=120)
        self._session = aiohttp.ClientSession(self._url, connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def run(self, key: str) -> float:
        session, auth = self._session, {"Authorization": f"Bearer {key}"}
        start = time.perf_counter()
        async with session.post(
            "/api/pipeline/execute", json={"pipeline": PIPELINE}, headers=auth
        ) as resp:
            resp.raise_for_status()
            run_id = (await resp.json())["run_id"]
        async with session.get(f"/api/runs/{run_id}/events", headers=auth) as events:
            events.raise_for_status()
            status = await _end_data(raw.decode() async for raw in events.content)
        return _ended(run_id, status, start)


CLIENTS: dict[str, type[AiohttpRuns] | type[HttpxRuns]] = {
    "aiohttp": AiohttpRuns,
    "httpx": HttpxRuns,
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:<28} n={len(values):<4} p50 {statistics.median(values) * 1000:7.1f} ms"
        f"   p95 {pct(values, 0.95) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
    )


def server_cpu_s(leader: int) -> float:
    """User + system CPU seconds of every live process in the served app's process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == leader:  # field 5 (pgrp), after the command name
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


async def measure(
    label: str, url: str, keys: list[str], args: argparse.Namespace, leader: int
) -> None:
    """Warm up, then ``args.single`` runs one after the other and ``args.rounds`` rounds of
    ``args.concurrent`` at once through ``args.client``; prints the figures."""
    single, concurrent, rounds, client = args.single, args.concurrent, args.rounds, args.client
    async with CLIENTS[client](url, concurrent) as runs:
        for _ in range(3):  # warm-up: first imports, first queries
            await runs.run(keys[0])
        cpu0, own0 = server_cpu_s(leader), time.process_time()
        alone = []
        for i in range(single):
            alone.append(await runs.run(keys[0]))
            print(f"  single {i + 1}/{single}", file=sys.stderr, end="\r")
        cpu1, own1 = server_cpu_s(leader), time.process_time()
        crowd: list[float] = []
        for r in range(rounds):
            crowd += await asyncio.gather(
                *(runs.run(keys[i % len(keys)]) for i in range(concurrent))
            )
            print(f"  round {r + 1}/{rounds} of {concurrent}", file=sys.stderr)
        cpu2, own2 = server_cpu_s(leader), time.process_time()
    ratio = pct(crowd, 0.95) / pct(alone, 0.95)
    print(f"== {label} — load average {os.getloadavg()[0]:.1f} (2 cores)")
    print(line("1 client (sequential)", alone))
    print(line(f"{concurrent} concurrent clients", crowd))
    print(
        f"ratio p95 {concurrent}-concurrent / single: {ratio:.2f} (goal <= 3)   "
        f"{concurrent}-concurrent p95 under 1 s: {'yes' if pct(crowd, 0.95) < 1 else 'no'}"
    )
    print(
        f"server CPU per run: {(cpu1 - cpu0) / len(alone) * 1000:.1f} ms (1 client), "
        f"{(cpu2 - cpu1) / len(crowd) * 1000:.1f} ms ({concurrent} concurrent);   "
        f"the {client} client's own: {(own1 - own0) / len(alone) * 1000:.1f} / "
        f"{(own2 - own1) / len(crowd) * 1000:.1f} ms"
    )


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    with open(BUILD_LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _scratch_pg() -> tuple[str, str]:
    import psycopg

    name = f"elx_perf_api_{os.getpid()}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


def _drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _serve_and_measure(args: argparse.Namespace, label: str, extra: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="elx-bench-api-") as tmp:
        data = Path(tmp)
        extra = {"ELEXIRION_CHAT_TOKEN_DELAY_S": "0", **RAISED_LIMITS, **extra}
        env = appserver.app_env(data, args.port, **extra)
        print(f"serving the app on port {args.port} ({label}) …", file=sys.stderr)
        with build_lock():  # the frontend build; released once the app answers
            proc = appserver.start_app(env, args.port, data / "reflex.log")
        try:
            keys = []
            for i in range(USERS):
                email = f"bench{i}@example.com"
                cli(env, "users", "create", "--email", email)
                keys.append(cli(env, "apikey", "create", "--email", email, "--name", "bench"))
            url = f"http://localhost:{args.port}"
            asyncio.run(measure(label, url, keys, args, proc.pid))
        finally:
            appserver.stop(proc)


def _floor(args: argparse.Namespace, workers: int) -> None:
    """The same measurement against bench/api_floor.py served by granian with ``workers``."""
    port = args.port + 1
    keys = [f"floor-key-{i}" for i in range(USERS)]
    env = {**os.environ, "ELEXIRION_FLOOR_KEYS": ",".join(keys)}
    with tempfile.TemporaryDirectory(prefix="elx-bench-floor-") as tmp:
        log = Path(tmp) / "granian.log"
        print(f"serving the floor on port {port} ({workers} worker(s)) …", file=sys.stderr)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("granian")),
                    *("--interface", "asgi", "--workers", str(workers)),
                    *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
                    "bench.api_floor:app",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            appserver.wait_for(f"http://127.0.0.1:{port}/ping", 60, proc, log)
            label = f"floor: same stack, no work ({workers} worker{'s' if workers > 1 else ''})"
            url = f"http://127.0.0.1:{port}"
            asyncio.run(measure(label, url, keys, args, proc.pid))
        finally:
            appserver.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=3170)
    parser.add_argument("--only", choices=("sqlite", "scaleout"), default=None)
    parser.add_argument("--client", choices=tuple(CLIENTS), default="aiohttp")
    parser.add_argument("--no-floor", action="store_true", help="skip bench/api_floor.py")
    args = parser.parse_args()
    print(f"client: {args.client}")
    print("limits raised for the bench: " + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items()))
    if args.only != "scaleout":
        _serve_and_measure(args, "1 worker, SQLite", {})
        if not args.no_floor:
            _floor(args, 1)
    if args.only != "sqlite":
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        name, url = _scratch_pg()
        try:
            extra = {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "GRANIAN_WORKERS": "2"}
            _serve_and_measure(args, "2 workers, PostgreSQL + Redis", extra)
            if not args.no_floor:
                _floor(args, 2)
        finally:
            _drop_pg(name)
            redis.Redis.from_url(REDIS_URL).flushdb()
    print("peer (reported, not run here): Dify 3-node echo workflow ~1 s alone, ~8 s at 60")


if __name__ == "__main__":
    main()
