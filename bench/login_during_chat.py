"""Logins while others chat (issue #7 item 9): does argon2 on the server slow the streams?

The served app (``reflex run --env prod --single-port``, fresh SQLite database, login and
registration limits raised: every simulated user comes from 127.0.0.1) streams from the fake
Anthropic model of ``bench/chat_stream.py`` (same process, same timestamped tokens at 50
tokens/s). N sessions (default 10) each stream ``--rounds`` replies back to back, in two phases
of the same run:

  a. chat alone;
  b. the same chat while bursts of ``--logins`` (default 20) concurrent ``POST /auth/login``
     with the right password, for as many accounts registered beforehand, are sent every
     ``--burst-every`` seconds (at most ``--bursts`` bursts). The server verifies each
     password with argon2 in a worker thread.

The measure is chat_stream's: per chunk, its arrival at the client − its send time at the
fake model (so it includes the chat state's 50 ms delta batching). The table shows phase,
chunks, p50, p95, p99; phase b is shown whole and restricted to the chunks that arrived
while a burst was in flight (its first request sent → its last answer). Goal: added p95
(b − a) ≤ 20 ms.

    .venv/bin/python bench/login_during_chat.py [--sessions 10] [--logins 20] [--rounds 4]

``--workers 1`` serves the app with a private Redis (port 3173), so Reflex keeps its state in
Redis instead of its default disk state manager.

Loopback only; ports 3171 (app), 3172 (fake model), 3173 (Redis, with --workers); every loop
is bounded and the bench stops by itself, killing only the processes it started. Progress to
stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chat_stream as cs

from tests.support.reflex_client import ReflexClient

ADDED_P95_GOAL_MS = 20.0


@dataclass
class Burst:
    started: float  # epoch seconds
    ended: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class Result:
    name: str
    turns: list[cs.Turn]
    wall_s: float
    cpu: tuple[float, float, float]
    bursts: list[Burst] = field(default_factory=list)

    def latencies(self, windows: Sequence[tuple[float, float]] | None = None) -> list[float]:
        """Chunk latencies (ms), all or only of the chunks that arrived inside ``windows``."""
        out: list[float] = []
        for t in self.turns:
            for seq, latency in t.latencies_ms.items():
                arrived = t.arrivals.get(seq)
                if windows is None or (
                    arrived is not None and any(a <= arrived <= b for a, b in windows)
                ):
                    out.append(latency)
        return out

    @property
    def windows(self) -> list[tuple[float, float]]:
        return [(b.started, b.ended) for b in self.bursts if b.ended]


async def login_burst(url: str, emails: Sequence[str]) -> Burst:
    """``len(emails)`` logins at once, each with the right password."""
    burst = Burst(time.time())

    async def one(email: str) -> None:
        t0 = time.monotonic()
        try:
            await cs.login_http(url, email)
        except RuntimeError as exc:  # a refused login is a result, not a crash of the bench
            burst.failures.append(str(exc))
            return
        burst.latencies_s.append(time.monotonic() - t0)

    await asyncio.gather(*(one(e) for e in emails))
    burst.ended = time.time()
    return burst


async def run_phase(
    name: str,
    args: argparse.Namespace,
    servers: cs.Servers,
    sessions: Sequence[cs.Session],
    chat: str,
    login_emails: Sequence[str],
) -> Result:
    """Every session streams ``args.rounds`` replies back to back; bursts of logins if asked."""
    cs.log(f"phase '{name}': {len(sessions)} sessions × {args.rounds} replies of {args.tokens}")
    cpu0, w0 = servers.cpu(), time.monotonic()
    streaming = True

    async def chatter(s: cs.Session) -> list[cs.Turn]:
        turns: list[cs.Turn] = []
        await asyncio.sleep(random.uniform(0, args.stagger))
        for r in range(args.rounds):
            text = f"{name}: message {r} from user {s.index}"
            turns.append(await cs.run_turn(s, chat, args.tokens, text, 0))
        return turns

    async def logins() -> list[Burst]:
        bursts: list[Burst] = []
        await asyncio.sleep(args.burst_first)
        for _ in range(args.bursts):
            if not streaming:
                break
            t0 = time.monotonic()
            burst = await login_burst(servers.app_url, login_emails)
            bursts.append(burst)
            cs.log(
                f"  burst {len(bursts)}: {len(burst.latencies_s)}/{len(login_emails)} logins in "
                f"{burst.ended - burst.started:.2f}s"
            )
            await asyncio.sleep(max(0.0, args.burst_every - (time.monotonic() - t0)))
        return bursts

    login_task = asyncio.create_task(logins()) if login_emails else None
    try:
        per_session = await asyncio.gather(*(chatter(s) for s in sessions))
    finally:
        streaming = False
    bursts = await login_task if login_task is not None else []
    cpu1, wall = servers.cpu(), time.monotonic() - w0
    turns = [t for ts in per_session for t in ts]
    ok = sum(1 for t in turns if t.final_text is not None and not t.error)
    cs.log(f"  done in {wall:.1f}s, {ok}/{len(turns)} replies complete, {len(bursts)} bursts")
    delta = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2])
    return Result(name, turns, wall, delta, bursts)


async def bench(
    args: argparse.Namespace, servers: cs.Servers, auth: str, chat: str
) -> list[Result]:
    run = uuid.uuid4().hex[:6]
    clients: list[ReflexClient] = []
    sem = asyncio.Semaphore(5)
    try:
        cs.log(f"opening {args.sessions} chat sessions, registering {args.logins} login accounts")

        async def opened(i: int) -> cs.Session:
            async with sem:
                return await cs.open_session(i, servers.app_url, auth, chat, run, clients)

        async def registered(i: int) -> str:
            email = f"login{i}-{run}@example.com"
            async with sem:
                await cs.register_http(servers.app_url, email)
            return email

        sessions = await asyncio.gather(*(opened(i) for i in range(args.sessions)))
        emails = await asyncio.gather(*(registered(i) for i in range(args.logins)))
        # Warm-up (not measured): the first reply of a fresh app pays for imports and caches.
        cs.log("warm-up: one reply per session and one login burst (not measured)")
        await asyncio.gather(*(cs.run_turn(s, chat, 10, "warm-up", 0) for s in sessions))
        await login_burst(servers.app_url, emails)
        await asyncio.sleep(0.5)
        alone = await run_phase("a: chat alone", args, servers, sessions, chat, [])
        await asyncio.sleep(0.5)
        during = await run_phase("b: chat + logins", args, servers, sessions, chat, emails)
        return [alone, during]
    finally:
        await asyncio.gather(*(c.close() for c in clients))


def report(results: list[Result], args: argparse.Namespace, fake: dict[str, object]) -> bool:
    alone, during = results
    out = [
        f"\nLogins during chat: {args.sessions} sessions streaming {args.tokens}-token replies at "
        f"{cs.RATE:.0f} tokens/s ({args.rounds} per session per phase); phase b: bursts of "
        f"{args.logins} concurrent logins (right password) every {args.burst_every:.1f}s; "
        f"{os.cpu_count()} cores, "
        + (f"{args.workers} app worker(s) + Redis" if args.workers else "1 app worker (no Redis)")
    ]
    head = f"{'phase':<34}{'replies':>9}{'chunks':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
    out += [head, "-" * len(head)]
    rows = [
        (alone.name, alone, alone.latencies()),
        (during.name, during, during.latencies()),
        ("b, chunks during a login burst", during, during.latencies(during.windows)),
    ]
    p95: dict[str, float] = {}
    for label, res, values in rows:
        ok = sum(1 for t in res.turns if t.final_text is not None and not t.error)
        p95[label] = cs.pct(values, 95)
        out.append(
            f"{label:<34}{ok:>4}/{len(res.turns):<4}{len(values):>8}{cs.pct(values, 50):>8.1f}"
            f"{p95[label]:>8.1f}{cs.pct(values, 99):>8.1f}"
        )
    out.append(
        "latency = arrival of a chunk at the client − its send time at the fake model "
        "(includes the chat state's 50 ms delta batching)."
    )
    lat = [v for b in during.bursts for v in b.latencies_s]
    fails = [f for b in during.bursts for f in b.failures]
    spans = [b.ended - b.started for b in during.bursts if b.ended]
    in_burst = sum(spans)
    out.append(
        f"\nLogins in phase b: {len(during.bursts)} bursts, {len(lat)}/{len(lat) + len(fails)} "
        f"answered 200; login latency p50 {cs.pct(lat, 50) * 1000:.0f} ms, p95 "
        f"{cs.pct(lat, 95) * 1000:.0f} ms, max {max(lat, default=float('nan')) * 1000:.0f} ms; "
        f"burst duration median {statistics.median(spans) if spans else float('nan'):.2f}s "
        f"({in_burst:.1f}s of the phase's {during.wall_s:.1f}s)"
    )
    if fails:
        out.append("login failures: " + "; ".join(sorted(set(fails))[:3]))
    out.append("CPU during each phase (cores busy, of " + f"{os.cpu_count()}):")
    for res in results:
        app, fk, bench_cpu = (c / res.wall_s for c in res.cpu)
        out.append(
            f"  {res.name:<22} app {app:4.2f}  clients {bench_cpu:4.2f}  fake model {fk:4.2f}  "
            f"({res.wall_s:.1f}s)"
        )
    out.append(f"fake model: max send lateness {fake.get('late_ms_max', 0):.1f} ms")
    lost = sum(t.lost for r in results for t in r.turns)
    errors = sorted({t.error for r in results for t in r.turns if t.error})
    if errors:
        out.append("chat errors: " + "; ".join(errors[:5]))
    added = p95[during.name] - p95[alone.name]
    added_burst = p95[rows[2][0]] - p95[alone.name]
    complete = all(t.final_text is not None and not t.error for r in results for t in r.turns)
    goals = [
        ("every reply complete, 0 lost", complete and lost == 0, f"{lost} lost"),
        (
            "every login answered 200",
            not fails and bool(lat),
            f"{len(lat)}/{len(lat) + len(fails)}",
        ),
        (
            f"added p95 = b − a ≤ {ADDED_P95_GOAL_MS:.0f} ms",
            added <= ADDED_P95_GOAL_MS,
            f"{p95[during.name]:.1f} − {p95[alone.name]:.1f} = {added:+.1f} ms "
            f"(during bursts only: {added_burst:+.1f} ms)",
        ),
    ]
    out.append("\nGoals:")
    for label, passed, detail in goals:
        out.append(f"  {'PASS' if passed else 'MISS'}  {label:<32} {detail}")
    print("\n".join(out), flush=True)
    return all(g[1] for g in goals)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10, help="chat sessions streaming")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per reply")
    parser.add_argument("--rounds", type=int, default=4, help="replies per session per phase")
    parser.add_argument("--logins", type=int, default=20, help="concurrent logins per burst")
    parser.add_argument("--bursts", type=int, default=4, help="at most this many bursts")
    parser.add_argument("--burst-every", type=float, default=2.0, help="seconds between bursts")
    parser.add_argument("--burst-first", type=float, default=1.0, help="first burst after (s)")
    parser.add_argument("--stagger", type=float, default=0.5, help="spread session starts (s)")
    parser.add_argument("--port", type=int, default=3171, help="the app's port")
    parser.add_argument("--fake-port", type=int, default=3172, help="the fake model's port")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="N app workers with a private Redis (Reflex's Redis state manager); default: the "
        "app's 1 worker with Reflex's default (disk) state manager",
    )
    parser.add_argument("--redis-port", type=int, default=3173, help="with --workers")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    auth, chat = cs.state_names()
    with cs.serve(args) as servers:
        results = asyncio.run(bench(args, servers, auth, chat))
        try:
            fake = json.loads(cs._get(f"{servers.fake_url}/stats"))
        except OSError:
            fake = {}
    return 0 if report(results, args, fake) else 1


if __name__ == "__main__":
    sys.exit(main())
