"""Chat streaming under load (issue #4): N websocket sessions streaming from a fake model.

The bench serves the real app (``reflex run --env prod --single-port``, fresh SQLite database)
pointed at its own fake Anthropic server, which streams every reply as K tokens at a fixed
rate (50 tokens/s); each token's text carries its sequence number and the fake's send time,
``⟦17@1764310000.123456⟧ ``. N simulated users register over HTTP (``POST /auth/register``,
which sets the HttpOnly ``elx_session`` cookie), then open a python-socketio client that carries
that cookie on its handshake (one tab each), open the chat and send messages the way the browser
does (``ChatState.send``). The app runs with the login/registration rate limits raised (every
simulated user comes from 127.0.0.1). Every
websocket frame is timestamped on arrival, so per chunk the bench knows the added latency
(model → app → client, including the chat state's 50 ms delta batching), and from the final
message which chunks were lost, duplicated or out of order. It also counts the websocket
payload bytes each reply costs, for a short conversation and for one of 200 messages.

    .venv/bin/python bench/chat_stream.py [--sessions 50] [--tokens 100] [--quick]
        [--workers N]   # N app workers with a private Redis (default: the app's 1 worker)

Phases: every session sends 2 messages in a new conversation, then (after 200 messages are
inserted into a second conversation per user and it is selected) 2 more there; sends are spread
over ``--stagger`` seconds. Bytes are compared turn by turn (same turn since the thread loaded).

Goals (issue #4): 50 sessions on this 2-core machine, p95 ≤ 100 ms, 0 lost, bytes per reply
independent of the conversation's length; (issue #7) chunk p95 in the 200-message conversation
÷ p95 in the short one ≤ 1.1 (the server loads only the shown branch).
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.support import appserver  # noqa: E402
from tests.support.reflex_client import VAR_SUFFIX, ReflexClient  # noqa: E402

RATE = 50.0  # tokens per second from the fake model
P95_GOAL_MS = 100.0
BYTES_RATIO_GOAL = 1.10  # long/short bytes per reply counted as "independent"
P95_RATIO_GOAL = 1.10  # 200-message p95 / 2-message p95 (issue #7: only the shown branch loads)
HISTORY_PAIRS = 100  # 200 messages
PASSWORD = "bench-password-1"
# Every simulated user comes from 127.0.0.1: the per-client limits would refuse most of them.
BENCH_LIMITS = {
    "ELEXIRION_LIMIT_LOGIN_CLIENT": "10000/minute",
    "ELEXIRION_LIMIT_REGISTER_CLIENT": "10000/minute",
    "ELEXIRION_LIMIT_LOGIN_ACCOUNT": "10000/minute",
    "ELEXIRION_LIMIT_LOGIN_ACCOUNT_CLIENT": "10000/minute",
}
TOKEN_RE = re.compile(r"⟦(\d+)@(\d+\.\d+)⟧")
ROUTER_MARK = "You route the messages"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the fake model (runs in its own process: --serve-fake) ----------------------------------


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _text_delta(text: str) -> bytes:
    return _sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )


async def _serve_fake(port: int, tokens: int, rate: float) -> None:
    """The Anthropic Messages SSE wire format (as tests/fakes/fake_anthropic.py), with
    timestamped tokens at a fixed rate. Routing requests get an instant ``answer``."""
    from aiohttp import web

    stats = {"route": 0, "answer": 0, "late_ms_max": 0.0}
    route_json = json.dumps(
        {"kind": "answer", "pipeline": None, "inputs": {}, "confidence": 0.95, "reason": "bench"}
    )

    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        system = body.get("system") or ""
        if isinstance(system, list):
            system = " ".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
        model = str(body.get("model") or "claude-bench")
        routing = str(system).startswith(ROUTER_MARK)
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "request-id": "req_bench"}
        )
        await resp.prepare(request)
        usage = {"input_tokens": 10, "output_tokens": 1}
        await resp.write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": f"msg_{uuid.uuid4().hex[:12]}",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": usage,
                    },
                },
            )
        )
        await resp.write(
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        loop = asyncio.get_running_loop()
        if routing:
            stats["route"] += 1
            await resp.write(_text_delta(route_json))
            count = 20
        else:
            stats["answer"] += 1
            t0 = loop.time()
            for i in range(tokens):
                delay = t0 + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    stats["late_ms_max"] = max(stats["late_ms_max"], -delay * 1000)
                await resp.write(_text_delta(f"⟦{i}@{time.time():.6f}⟧ "))
            count = tokens
        await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await resp.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"input_tokens": 10, "output_tokens": count},
                },
            )
        )
        await resp.write(_sse("message_stop", {"type": "message_stop"}))
        await resp.write_eof()
        return resp

    async def get_stats(_request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.add_routes([web.post("/v1/messages", messages), web.get("/stats", get_stats)])
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("READY", flush=True)
    await asyncio.Event().wait()


# --- processes -------------------------------------------------------------------------------


def _cpu_seconds(pids: Sequence[int] = (), pgid: int | None = None) -> float:
    """User+system CPU seconds of the given processes, or of every process in ``pgid``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pgid is None and pid not in pids:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if pgid is not None and int(fields[2]) != pgid:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


@dataclass
class Servers:
    app_url: str
    fake_url: str
    db_url: str
    app: subprocess.Popen[bytes]
    fake: subprocess.Popen[bytes]
    redis: subprocess.Popen[bytes] | None
    app_log: Path

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far: app (its process group, plus Redis), fake model, this process."""
        redis = _cpu_seconds([self.redis.pid]) if self.redis is not None else 0.0
        return (
            _cpu_seconds(pgid=self.app.pid) + redis,
            _cpu_seconds([self.fake.pid]),
            time.process_time(),
        )


@contextlib.contextmanager
def serve(args: argparse.Namespace) -> Iterator[Servers]:
    """The fake model and the app in prod mode (fresh database); all always killed.

    With ``--workers N`` a private Redis is started too, so Reflex can run N workers.
    """
    port, fake_port = args.port, args.fake_port
    tmp = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    db_url = f"sqlite:///{tmp / 'app.db'}"
    fake = subprocess.Popen(
        [sys.executable, __file__, "--serve-fake", str(fake_port), "--tokens", str(args.tokens)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    app: subprocess.Popen[bytes] | None = None
    redis: subprocess.Popen[bytes] | None = None
    failed = True
    try:
        assert fake.stdout is not None
        if fake.stdout.readline().strip() != b"READY":
            raise RuntimeError("the fake model server did not start")
        env = appserver.app_env(
            tmp,
            port,
            ANTHROPIC_API_KEY="fake-key",
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{fake_port}",
            **BENCH_LIMITS,
        )
        if args.workers:
            log(f"starting a private redis-server on :{args.redis_port} for {args.workers} workers")
            redis = subprocess.Popen(
                [
                    "redis-server",
                    *("--port", str(args.redis_port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(tmp)),
                ],
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", args.redis_port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or redis.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.1)
            env["REDIS_URL"] = f"redis://127.0.0.1:{args.redis_port}"
            env["GRANIAN_WORKERS"] = str(args.workers)
        app_log = tmp / "reflex.log"
        log(f"starting the app: reflex run --env prod --single-port on :{port} (log {app_log})")
        started = time.monotonic()
        app = appserver.start_app(env, port, app_log, timeout_s=300)
        log(f"app up after {time.monotonic() - started:.1f}s")
        yield Servers(
            f"http://localhost:{port}",
            f"http://127.0.0.1:{fake_port}",
            db_url,
            app,
            fake,
            redis,
            app_log,
        )
        failed = False
    finally:
        for proc in (app, fake, redis):
            appserver.stop(proc)
        if failed:
            log(f"kept {tmp} (database and reflex.log) for a look")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# --- state names -----------------------------------------------------------------------------


def state_names() -> tuple[str, str]:
    """Full names of AuthState and ChatState (as the compiled frontend addresses them)."""
    os.chdir(ROOT)  # rxconfig.py must be importable
    from elexirion_app.web.state.auth import AuthState
    from elexirion_app.web.state.chat import ChatState

    for name in ("streaming", "streaming_text", "tail", "error", "offline", "conversation_id"):
        if name not in ChatState.base_vars:
            raise RuntimeError(f"ChatState has no var {name!r}: update this bench")
    return AuthState.get_full_name(), ChatState.get_full_name()


def flush_interval() -> float:
    from elexirion_app.web.state.chat import FLUSH_INTERVAL_S

    return FLUSH_INTERVAL_S


# --- one reply, as seen by one client ------------------------------------------------------


@dataclass
class Turn:
    """What one client saw of one reply."""

    chat: str
    tokens: int
    sent_at: float = 0.0
    started: bool = False
    prev_text: str = ""
    parsed_upto: int = 0
    latencies_ms: dict[int, float] = field(default_factory=dict)
    arrivals: dict[int, float] = field(default_factory=dict)  # seq -> arrival (epoch s)
    frame_latencies_ms: list[float] = field(default_factory=list)  # newest chunk per frame
    first_chunk_s: float | None = None
    max_seq: int = -1
    stream_dups: int = 0
    stream_ooo: int = 0
    rewrites: int = 0
    via_final: int = 0
    final_text: str | None = None
    lost: int = 0
    final_dups: int = 0
    final_ooo: int = 0
    error: str = ""
    bytes: int = 0
    frames: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def _key(self, name: str) -> str:
        return name + VAR_SUFFIX

    def on_update(self, update: dict[str, Any], arrived: float) -> None:
        delta = (update.get("delta") or {}).get(self.chat)
        if not isinstance(delta, dict) or self.done.is_set():
            return
        if delta.get(self._key("streaming")) is True:
            self.started = True
        text = delta.get(self._key("streaming_text"))
        if self.started and isinstance(text, str) and text:
            self._stream(text, arrived)
        if self.started and delta.get(self._key("streaming")) is False:
            self.error = str(delta.get(self._key("error")) or "")
            tail = delta.get(self._key("tail")) or []
            final = next(
                (m for m in reversed(tail) if isinstance(m, dict) and m.get("role") == "assistant"),
                None,
            )
            if final is not None:
                self._final(str(final.get("content") or ""), arrived)
            self.done.set()

    def _record(self, seq: int, sent: float, arrived: float, *, rewriting: bool) -> float:
        latency = (arrived - sent) * 1000
        if seq in self.latencies_ms:
            if not rewriting:
                self.stream_dups += 1
            return latency
        if seq < self.max_seq:
            self.stream_ooo += 1
        self.max_seq = max(self.max_seq, seq)
        self.latencies_ms[seq] = latency
        self.arrivals[seq] = arrived
        if self.first_chunk_s is None:
            self.first_chunk_s = arrived - self.sent_at
        return latency

    def _stream(self, text: str, arrived: float) -> None:
        rewriting = not text.startswith(self.prev_text)
        if rewriting:
            self.rewrites += 1
            self.parsed_upto = 0
        newest: float | None = None
        for m in TOKEN_RE.finditer(text, self.parsed_upto):
            newest = self._record(int(m[1]), float(m[2]), arrived, rewriting=rewriting)
            self.parsed_upto = m.end()
        if newest is not None and not rewriting:
            self.frame_latencies_ms.append(newest)
        self.prev_text = text

    def _final(self, content: str, arrived: float) -> None:
        self.final_text = content
        seqs = [int(m[1]) for m in TOKEN_RE.finditer(content)]
        for m in TOKEN_RE.finditer(content):
            seq = int(m[1])
            if seq not in self.latencies_ms:  # the last batch rides in the final message
                self.via_final += 1
                self._record(seq, float(m[2]), arrived, rewriting=True)
        self.lost = len(set(range(self.tokens)) - set(seqs))
        self.final_dups = len(seqs) - len(set(seqs))
        self.final_ooo = sum(1 for a, b in itertools.pairwise(seqs) if b < a)


# --- the simulated users -------------------------------------------------------------------


@dataclass
class Session:
    index: int
    client: ReflexClient
    email: str
    user_id: int = 0
    long_conversation: int = 0


async def register_http(url: str, email: str, password: str = PASSWORD) -> str:
    """Register over HTTP (``POST /auth/register``, JSON answer); the ``Cookie`` header value
    that carries the new session (``elx_session=<token>``)."""
    return await _auth_post(f"{url}/auth/register", email, password)


async def login_http(url: str, email: str, password: str = PASSWORD) -> str:
    """Log in over HTTP (``POST /auth/login``, JSON answer); the session's ``Cookie`` value."""
    return await _auth_post(f"{url}/auth/login", email, password)


async def _auth_post(url: str, email: str, password: str) -> str:
    from elexirion_app.services.accounts.auth import SESSION_COOKIE

    form = {"email": email, "password": password}
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.post(url, data=form, headers={"Accept": "application/json"}) as resp,
    ):
        body = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"POST {url} for {email}: {resp.status} {body[:200]}")
        morsel = resp.cookies.get(SESSION_COOKIE)
        if morsel is None or not morsel.value:
            raise RuntimeError(f"POST {url} for {email}: no {SESSION_COOKIE} cookie")
        return f"{SESSION_COOKIE}={morsel.value}"


async def open_session(
    index: int, url: str, auth: str, chat: str, run: str, clients: list[ReflexClient]
) -> Session:
    """Register over HTTP, connect the websocket with the session cookie, open /chat."""
    email = f"bench{index}-{run}@example.com"
    cookie = await register_http(url, email)
    client = ReflexClient(url, cookie=cookie)
    clients.append(client)
    await client.connect()
    session = Session(index, client, email)
    # Open /chat (its on_load): conversations, and `offline` False with the live provider;
    # the identity middleware names the cookie's user in AuthState.
    await client.emit(f"{chat}.load", {}, "/chat")
    await client.wait_for(
        lambda: client.var(chat, "offline") is False and client.var(auth, "user_email") == email,
        60,
    )
    return session


async def run_turn(session: Session, chat: str, tokens: int, text: str, stagger: float) -> Turn:
    await asyncio.sleep(stagger)
    client = session.client
    turn = Turn(chat, tokens)
    client.listeners.append(turn.on_update)
    bytes0, frames0 = client.bytes_received, client.frames_received
    try:
        turn.sent_at = time.time()
        await client.emit(f"{chat}.send", {"form_data": {"message": text}}, "/chat")
        try:
            await asyncio.wait_for(turn.done.wait(), tokens / RATE + 60)
        except TimeoutError:
            turn.error = turn.error or "timed out"
        turn.bytes = client.bytes_received - bytes0
        turn.frames = client.frames_received - frames0
    finally:
        client.listeners.remove(turn.on_update)
    return turn


def build_long_conversations(db_url: str, sessions: Sequence[Session]) -> None:
    """Give each user a conversation of ``2 * HISTORY_PAIRS`` messages, straight in the DB."""
    from sqlalchemy import func, insert
    from sqlmodel import Session as DBSession
    from sqlmodel import select

    from elexirion_app.db.engine import make_engine
    from elexirion_app.db.models import AppUser, Conversation, Message, utcnow

    engine = make_engine(db_url)
    with DBSession(engine) as db:
        by_email = {u.email: u.id for u in db.exec(select(AppUser)).all()}
        next_id = (db.exec(select(func.max(Message.id))).one() or 0) + 1
        rows: list[dict[str, Any]] = []
        for s in sessions:
            s.user_id = int(by_email[s.email] or 0)
            conv = Conversation(user_id=s.user_id, title="A long conversation")
            db.add(conv)
            db.flush()
            assert conv.id is not None
            parent: int | None = None
            for i in range(HISTORY_PAIRS):
                for role, content in (
                    ("user", f"Question {i}: how does step {i} of the pipeline work? " * 3),
                    ("assistant", f"Answer {i}: step {i} reads the previous output. " * 6),
                ):
                    rows.append(
                        {
                            "id": next_id,
                            "conversation_id": conv.id,
                            "user_id": s.user_id,
                            "role": role,
                            "content": content.strip(),
                            "status": "complete",
                            "model": "claude-bench" if role == "assistant" else None,
                            "parent_id": parent,
                            "meta": {},
                            "created_at": utcnow(),
                        }
                    )
                    parent = next_id
                    next_id += 1
            conv.current_leaf_id = parent
            db.add(conv)
            s.long_conversation = conv.id
        db.execute(insert(Message), rows)
        db.commit()
    engine.dispose()


async def select_long(session: Session, chat: str) -> None:
    client = session.client
    await client.emit(
        f"{chat}.select_conversation", {"conversation_id": session.long_conversation}, "/chat"
    )
    await client.wait_for(
        lambda: (
            client.var(chat, "conversation_id") == session.long_conversation
            and len(client.var(chat, "messages") or []) > 0
        ),
        60,
    )


# --- results -------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Phase:
    name: str
    turns: list[Turn]
    wall_s: float
    cpu: tuple[float, float, float]  # app, fake, bench: CPU seconds during the phase

    @property
    def ok(self) -> list[Turn]:
        return [t for t in self.turns if t.final_text is not None and not t.error]

    @property
    def latencies(self) -> list[float]:
        return [v for t in self.turns for v in t.latencies_ms.values()]

    @property
    def frame_latencies(self) -> list[float]:
        return [v for t in self.turns for v in t.frame_latencies_ms]

    def count(self, attr: str) -> int:
        return sum(int(getattr(t, attr)) for t in self.turns)

    @property
    def median_bytes(self) -> float:
        ok = self.ok
        return statistics.median(t.bytes for t in ok) if ok else float("nan")


def _turn_pairs(phases: list[Phase]) -> list[tuple[int, Phase, Phase]]:
    """(turn, short-conversation phase, long-conversation phase) of the same turn number."""
    pairs: list[tuple[int, Phase, Phase]] = []
    for short in (p for p in phases if p.name.startswith("short")):
        turn = short.name.rsplit(" ", 1)[-1]
        same = [p for p in phases if p.name.startswith("long") and p.name.endswith(turn)]
        if same:
            pairs.append((int(turn), short, same[0]))
    return pairs


def _median(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def report(
    phases: list[Phase],
    sessions: int,
    tokens: int,
    flush_s: float,
    fake_stats: dict[str, Any],
    workers: int,
) -> bool:
    out: list[str] = []
    out.append(
        f"\nChat streaming bench: {sessions} sessions × {tokens} tokens at {RATE:.0f} tokens/s "
        f"(chat state batches deltas every {flush_s * 1000:.0f} ms), {os.cpu_count()} cores, "
        + (f"{workers} app workers + Redis" if workers else "1 app worker (no Redis)")
    )
    head = (
        f"{'phase':<26}{'replies':>9}{'chunks':>8}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}"
        f"{'frame p95':>10}{'lost':>6}{'dup':>5}{'ooo':>5}{'1st chunk':>10}{'bytes/reply':>12}"
        f"{'frames':>7}"
    )
    out += [head, "-" * len(head)]
    every = Phase("all phases", [t for p in phases for t in p.turns], 0, (0, 0, 0))
    for p in [*phases, every]:
        firsts = [t.first_chunk_s for t in p.turns if t.first_chunk_s is not None]
        ok = p.ok
        out.append(
            f"{p.name:<26}{len(ok):>4}/{len(p.turns):<4}{len(p.latencies):>8}"
            f"{pct(p.latencies, 50):>8.1f}{pct(p.latencies, 95):>8.1f}"
            f"{max(p.latencies, default=float('nan')):>8.1f}{pct(p.frame_latencies, 95):>10.1f}"
            f"{p.count('lost'):>6}{p.count('final_dups') + p.count('stream_dups'):>5}"
            f"{p.count('final_ooo') + p.count('stream_ooo'):>5}"
            f"{(statistics.median(firsts) if firsts else float('nan')):>9.2f}s"
            f"{p.median_bytes:>12,.0f}"
            f"{(statistics.median(t.frames for t in ok) if ok else float('nan')):>7.0f}"
        )
    out.append(
        "latency = arrival of a chunk at the client − its send time at the fake model; "
        "'frame p95' counts only the newest chunk of each frame (≈ without the 50 ms batching); "
        "'1st chunk' = send → first chunk (median, incl. the routing call); bytes = websocket "
        "payload bytes (uncompressed) from send to the final message (median)."
    )
    out.append("\nCPU during each phase (cores busy, of " + f"{os.cpu_count()}):")
    for p in phases:
        app, fake, bench = (c / p.wall_s for c in p.cpu)
        out.append(
            f"  {p.name:<26} app {app:4.2f}  clients {bench:4.2f}  fake model {fake:4.2f}  "
            f"total {app + fake + bench:4.2f}  ({p.wall_s:.1f}s)"
        )
    errors = sorted({t.error for t in every.turns if t.error})
    if errors:
        out.append("errors: " + "; ".join(errors[:5]))
    out.append(
        f"fake model: {fake_stats.get('answer', '?')} answers, {fake_stats.get('route', '?')} "
        f"routing calls, max send lateness {fake_stats.get('late_ms_max', 0):.1f} ms"
    )
    # Same turn since the thread was loaded, short vs 200-message conversation.
    pairs = [(n, a.median_bytes, b.median_bytes) for n, a, b in _turn_pairs(phases)]
    ratio = max((b / a for _, a, b in pairs if a), default=float("nan"))
    bytes_detail = "; ".join(
        f"turn {n}: {a:,.0f} B vs {b:,.0f} B (×{b / a:.2f})" for n, a, b in pairs if a
    )
    # Chunk latency p95, short (new conversation: 0 then 2 messages before the send) vs the
    # 200-message conversation (200 then 202), pooled over both turns and turn by turn.
    short_all = [v for p in phases if p.name.startswith("short") for v in p.latencies]
    long_all = [v for p in phases if p.name.startswith("long") for v in p.latencies]
    p95_short, p95_long = pct(short_all, 95), pct(long_all, 95)
    p95_ratio = p95_long / p95_short if p95_short else float("nan")
    firsts_short = [t.first_chunk_s for p in phases if p.name.startswith("short") for t in p.turns]
    firsts_long = [t.first_chunk_s for p in phases if p.name.startswith("long") for t in p.turns]
    out.append(
        "\nShort (2-message: 0 then 2 messages before the send) vs long (200-message: 200 "
        "then 202) conversation, chunk latency:"
    )
    for n, short, long in _turn_pairs(phases):
        a, b = pct(short.latencies, 95), pct(long.latencies, 95)
        out.append(
            f"  turn {n}: p95 {a:6.1f} ms ({len(short.latencies)} chunks) vs "
            f"{b:6.1f} ms ({len(long.latencies)} chunks)  ratio {b / a if a else float('nan'):.2f}"
        )
    out.append(
        f"  both turns: p95 {p95_short:6.1f} ms ({len(short_all)} chunks) vs {p95_long:6.1f} ms "
        f"({len(long_all)} chunks)  ratio 200-message / 2-message = {p95_ratio:.2f} "
        f"(goal ≤ {P95_RATIO_GOAL:.2f})"
    )
    out.append(
        f"  1st chunk (median, send → first chunk): {_median(firsts_short):.3f} s vs "
        f"{_median(firsts_long):.3f} s"
    )
    mixed_short = [v for p in phases if p.name.startswith("mixed short") for v in p.latencies]
    mixed_long = [v for p in phases if p.name.startswith("mixed long") for v in p.latencies]
    m_short, m_long = pct(mixed_short, 95), pct(mixed_long, 95)
    m_ratio = m_long / m_short if m_short else float("nan")
    out.append(
        f"  interleaved (same rounds, half the sessions each): p95 {m_short:6.1f} ms "
        f"({len(mixed_short)} chunks, fresh conversations) vs {m_long:6.1f} ms "
        f"({len(mixed_long)} chunks, 200-message)  ratio {m_ratio:.2f}"
    )
    p95 = pct(every.latencies, 95)
    served = len(every.ok) == len(every.turns)
    lost = every.count("lost")
    dups = every.count("final_dups") + every.count("stream_dups")
    ooo = every.count("final_ooo") + every.count("stream_ooo")
    goals = [
        (
            f"{sessions} sessions, every reply complete",
            served,
            f"{len(every.ok)}/{len(every.turns)}",
        ),
        (f"p95 added latency ≤ {P95_GOAL_MS:.0f} ms", p95 <= P95_GOAL_MS, f"{p95:.1f} ms"),
        ("0 lost chunks", lost == 0, f"{lost} lost, {dups} duplicated, {ooo} out of order"),
        (
            "bytes/reply independent of length",
            ratio <= BYTES_RATIO_GOAL,
            f"short vs 200-message conversation, {bytes_detail}",
        ),
        (
            f"p95 200-msg / 2-msg ≤ {P95_RATIO_GOAL:.2f}",
            p95_ratio <= P95_RATIO_GOAL,
            f"sequential phases: {p95_long:.1f} ms / {p95_short:.1f} ms = {p95_ratio:.2f}",
        ),
        (
            f"same, interleaved ≤ {P95_RATIO_GOAL:.2f}",
            m_ratio <= P95_RATIO_GOAL,
            f"same rounds: {m_long:.1f} ms / {m_short:.1f} ms = {m_ratio:.2f}",
        ),
    ]
    out.append("\nGoals:")
    for label, passed, detail in goals:
        out.append(f"  {'PASS' if passed else 'MISS'}  {label:<38} {detail}")
    print("\n".join(out), flush=True)
    return all(g[1] for g in goals)


# --- main ----------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, servers: Servers, auth: str, chat: str) -> list[Phase]:
    run = uuid.uuid4().hex[:6]
    log(f"opening {args.sessions} sessions (connect, register, open /chat)")
    sem = asyncio.Semaphore(10)
    clients: list[ReflexClient] = []
    try:
        return await _bench(args, servers, auth, chat, run, sem, clients)
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def _bench(
    args: argparse.Namespace,
    servers: Servers,
    auth: str,
    chat: str,
    run: str,
    sem: asyncio.Semaphore,
    clients: list[ReflexClient],
) -> list[Phase]:
    t0 = time.monotonic()

    async def opened(i: int) -> Session:
        async with sem:
            return await open_session(i, servers.app_url, auth, chat, run, clients)

    sessions = await asyncio.gather(*(opened(i) for i in range(args.sessions)))
    log(f"{len(sessions)} sessions ready in {time.monotonic() - t0:.1f}s")
    phases: list[Phase] = []

    async def phase(name: str, texts: list[str]) -> None:
        log(f"phase '{name}': {len(sessions)} replies of {args.tokens} tokens")
        cpu0, w0 = servers.cpu(), time.monotonic()
        turns = await asyncio.gather(
            *(
                run_turn(s, chat, args.tokens, texts[s.index], random.uniform(0, args.stagger))
                for s in sessions
            )
        )
        cpu1, wall = servers.cpu(), time.monotonic() - w0
        delta = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2])
        phases.append(Phase(name, list(turns), wall, delta))
        ok = sum(1 for t in turns if t.final_text is not None and not t.error)
        log(f"  done in {wall:.1f}s, {ok}/{len(turns)} complete")
        await asyncio.sleep(0.5)

    await phase("short conv, turn 1", [f"Hello from user {s.index}" for s in sessions])
    await phase("short conv, turn 2", [f"And a follow-up from {s.index}" for s in sessions])
    log(f"building {len(sessions)} conversations of {2 * HISTORY_PAIRS} messages in the DB")
    await asyncio.to_thread(build_long_conversations, servers.db_url, sessions)
    sem = asyncio.Semaphore(10)

    async def selected(s: Session) -> None:
        async with sem:
            await select_long(s, chat)

    await asyncio.gather(*(selected(s) for s in sessions))
    await phase("long conv (200), turn 1", [f"One more question from {s.index}" for s in sessions])
    await phase("long conv (200), turn 2", [f"And a last one from {s.index}" for s in sessions])

    # Interleaved rounds: half the sessions in a fresh conversation (0 messages before the
    # send, as in "short conv, turn 1"), the other half in their 200-message one, at the same
    # time; then swapped. Both groups share the same load and moment, so their p95s compare
    # the conversation's length alone (sequential phases also differ in what else happened).
    async def fresh(s: Session) -> None:
        async with sem:
            await s.client.emit(f"{chat}.new_conversation", {}, "/chat")
            await s.client.wait_for(lambda: s.client.var(chat, "conversation_id") == 0, 60)

    for round_no, short_parity in ((1, 0), (2, 1)):
        await asyncio.gather(
            *(fresh(s) if s.index % 2 == short_parity else selected(s) for s in sessions)
        )
        log(f"interleaved round {round_no}: half fresh, half 200-message conversations")
        cpu0, w0 = servers.cpu(), time.monotonic()
        turns = await asyncio.gather(
            *(
                run_turn(
                    s,
                    chat,
                    args.tokens,
                    f"Interleaved question {round_no} from {s.index}",
                    random.uniform(0, args.stagger),
                )
                for s in sessions
            )
        )
        cpu1, wall = servers.cpu(), time.monotonic() - w0
        delta = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2])
        by_session = dict(zip((s.index for s in sessions), turns, strict=True))
        for label, parity in (("short", short_parity), ("long", 1 - short_parity)):
            group = [t for i, t in by_session.items() if i % 2 == parity]
            phases.append(Phase(f"mixed {label}, round {round_no}", group, wall, delta))
        await asyncio.sleep(0.5)
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=100, help="tokens per reply")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 sessions, 30 tokens")
    parser.add_argument("--port", type=int, default=3250, help="the app's port")
    parser.add_argument("--fake-port", type=int, default=18050, help="the fake model's port")
    parser.add_argument(
        "--stagger", type=float, default=0.5, help="spread the sends over this many seconds"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run the app with N workers (starts a private Redis; default: the app's 1 worker)",
    )
    parser.add_argument("--redis-port", type=int, default=18099, help="with --workers")
    parser.add_argument("--serve-fake", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        asyncio.run(_serve_fake(args.serve_fake, args.tokens, RATE))
        return 0
    if args.quick:
        args.sessions, args.tokens = 5, 30
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    auth, chat = state_names()
    flush_s = flush_interval()
    with serve(args) as servers:
        phases = asyncio.run(bench(args, servers, auth, chat))
        try:
            fake_stats = json.loads(_get(f"{servers.fake_url}/stats"))
        except OSError:
            fake_stats = {}
    ok = report(phases, args.sessions, args.tokens, flush_s, fake_stats, args.workers)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
