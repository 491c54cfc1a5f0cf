"""The runs of this worker, followed live, and their changes told to the other workers.

CONTRACT:
- ``JOBS`` holds each run this worker started (``Job``: its user, task, live state and a
  ``changed`` event), kept a minute after it ends so streams still waiting wake up.
- ``LiveView`` is the run's observer that keeps ``job.live`` — the state ``jobs.snapshot`` will
  read from the database, same fields and order — so a stream of a run of this worker follows
  it without a database read per change; with ``REDIS_URL`` set it also publishes each change
  (one message per loop turn, in order) for streams on other workers.
- ``watch`` gives an event stream a wait that ends when the run reports progress: at once for
  a run of this worker; through Redis pub/sub (channel ``elx:run:<id>``) for a run of another
  worker; else after the timeout (the stream then re-reads the database, which stays the
  source of truth: a missed signal costs at most one timeout).
- ``publish(run_id)`` with no state is the final signal: "read the database".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from elexirion_app.core.events import RunEvent, RunStarted, StepFinished, StepStarted

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A run of this worker; ``task`` is None while it is being resolved and queued (the slot
    is already taken, so a burst of starts cannot pass ``MAX_ACTIVE``). ``live`` is the run's
    state kept from the engine's events while it goes (None: not started yet); once ``done``,
    its streams read the final state from the database."""

    user_id: int
    task: asyncio.Task[Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    live: RunState | None = None
    done: bool = False


JOBS: dict[str, Job] = {}


FINISHED = ("succeeded", "failed", "interrupted", "cancelled")


@dataclass(frozen=True)
class StepState:
    name: str
    status: str
    model: str
    tokens: dict[str, int]
    cost_usd: str
    latency_ms: float
    error: str


@dataclass(frozen=True)
class RunState:
    status: str
    error: str
    cost_usd: str
    tokens: dict[str, int]
    steps: tuple[StepState, ...]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunState) if f.name != "steps")


class LiveView:
    """An observer keeping ``job.live``: the run's state as ``snapshot`` will read it from the
    database (same fields, same order: nested steps first, then the top-level ones), so an
    event stream of a run of this worker follows it without a database read per change. It
    sees each event before the run recorder writes it (a stream may show a step finished a
    moment before its row is); the run's final state is always read from the database."""

    def __init__(self, run_id: str, job: Job, step_names: tuple[str, ...]) -> None:
        self.run_id, self.job = run_id, job
        self.top = {n[:200]: _queued(n[:200]) for n in step_names}
        self.nested: dict[str, StepState] = {}
        self._dirty = False
        self._pump: asyncio.Future[None] | None = None
        # Whether the last message reached a stream on another worker. When none listened, the
        # next one says only "it changed" (no state to build and serialise): a stream that
        # subscribed in between reads the database once, and the message after carries the
        # state again.
        self._followed = True

    def _step(self, name: str) -> StepState:
        name = name[:200]
        found = self.top.get(name) or self.nested.get(name)
        if found is None:
            found = self.nested[name] = _queued(name)
        return found

    def _put(self, step: StepState) -> None:
        (self.top if step.name in self.top else self.nested)[step.name] = step

    async def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            for name in event.step_names:  # steps the queued row lacked are added last
                self.top.setdefault(name[:200], _queued(name[:200]))
        elif isinstance(event, StepStarted):
            s = self._step(event.step)
            self._put(replace(s, status="running", model=event.model or "", error=""))
        elif isinstance(event, StepFinished):
            s = self._step(event.step)
            answered_by = event.result.get("model") if isinstance(event.result, dict) else None
            self._put(
                replace(
                    s,
                    status=event.status,
                    model=answered_by[:100]
                    if isinstance(answered_by, str) and answered_by
                    else s.model,
                    tokens=event.usage.to_dict(),
                    cost_usd=f"{event.cost:.6f}",
                    latency_ms=round(float(event.latency_ms), 1),
                    error=event.error or "",
                )
            )
        else:
            return
        steps = (*self.nested.values(), *self.top.values())
        self.job.live = RunState("running", "", f"{0:.6f}", {}, steps)
        self.job.changed.set()
        if _client() is not None:
            self._dirty = True
            if self._pump is None or self._pump.done():
                self._pump = asyncio.ensure_future(self._publish_changes())

    async def _publish_changes(self) -> None:
        """Publish the latest state until none is newer, one message at a time (so other
        workers get them in order; changes of one loop turn go in one message). A plain
        signal that a stream did get is followed at once by the state itself: the database
        that stream reads may not have the change yet (the recorder writes after this view).
        A failure here is logged, never raised into the run's end (its final signal)."""
        try:
            while self._dirty:
                await asyncio.sleep(0)
                self._dirty = False
                state = self.job.live if self._followed else None
                receivers = await publish(self.run_id, state)
                if receivers is not None:
                    self._followed = receivers > 0
                    if state is None and self._followed:
                        self._dirty = True
        except Exception:
            log.exception("run %s: live change not published", self.run_id)

    async def drained(self) -> None:
        """Once the changes already seen are published (before the final signal)."""
        if self._pump is not None:
            await asyncio.shield(self._pump)


def _queued(name: str) -> StepState:
    return StepState(name, "queued", "", {}, f"{0:.6f}", 0.0, "")


def is_local(run_id: str) -> bool:
    """Whether the run is (or was a moment ago) a job of this worker."""
    return run_id in JOBS


_redis: dict[int, Any] = {}  # one client per event loop (tests run several loops)


def _client() -> Any | None:
    from elexirion_app.config import get_settings

    url = get_settings().redis_url
    if not url:
        return None
    key = id(asyncio.get_running_loop())
    if key not in _redis:
        import redis.asyncio as aioredis

        _redis[key] = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    return _redis[key]


def _channel(run_id: str) -> str:
    return f"elx:run:{run_id}"


def step_fields(step: StepState) -> dict[str, Any]:
    """A step's fields for JSON (flat: names, figures and a tokens dict; the instance's own
    dict, not the deep copy ``dataclasses.asdict`` makes): read it, do not change it."""
    return vars(step)


def _as_message(state: RunState) -> bytes:
    """The state as the JSON ``_state_of`` reads (the fields of each dataclass, flat)."""
    fields = {f: getattr(state, f) for f in _RUN_FIELDS}
    fields["steps"] = [step_fields(step) for step in state.steps]
    return json.dumps(fields).encode()


async def publish(run_id: str, state: RunState | None = None) -> int | None:
    """Tell streams on other workers that the run changed, with its live state when there is
    one (they then need no database read; without one they read it). Returns how many
    subscribers got it (None: no Redis, or it failed). A failure is logged: they still poll
    the database."""
    client = _client()
    if client is None:
        return None
    from redis.exceptions import RedisError

    message = b"1" if state is None else _as_message(state)
    try:
        return int(await client.publish(_channel(run_id), message))
    except (OSError, RedisError) as exc:
        log.warning("run %s: change not published to Redis: %s", run_id, exc)
        return None


def _state_of(message: Any) -> RunState | None:
    """The live state a message of another worker carries (None: just "it changed")."""
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, bytes | str) or data in (b"1", "1"):
        return None
    try:
        raw = json.loads(data)
        steps = tuple(StepState(**step) for step in raw.pop("steps"))
        return RunState(steps=steps, **raw)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("unreadable run change message: %s", exc)
        return None


class Watch:
    """``await changed(timeout_s)``: True when the run reported a change, False when the
    timeout passed; ``state`` is then the run's state that came with the change from another
    worker (None: read it)."""

    def __init__(self, run_id: str, pubsub: Any | None) -> None:
        self.run_id, self.pubsub = run_id, pubsub
        self.state: RunState | None = None

    async def __call__(self, timeout_s: float) -> bool:
        self.state = None
        job = JOBS.get(self.run_id)
        if job is not None:
            try:
                await asyncio.wait_for(job.changed.wait(), timeout_s)
            except TimeoutError:
                return False
            job.changed.clear()
            return True
        if self.pubsub is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while True:  # None: the timeout, or the subscription's confirmation (skipped)
                message = await self.pubsub.get_message(timeout=max(deadline - loop.time(), 0))
                if message is not None:
                    self.state = _state_of(message)
                    return True
                if loop.time() >= deadline:
                    return False
        await asyncio.sleep(timeout_s)
        return False


@contextlib.asynccontextmanager
async def watch(run_id: str) -> AsyncIterator[Watch]:
    """``async with watch(run_id) as changed: await changed(timeout_s)`` — see the contract
    and ``Watch``."""
    client = _client()
    pubsub = None
    if client is not None and run_id not in JOBS:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(_channel(run_id))
    try:
        yield Watch(run_id, pubsub)
    finally:
        if pubsub is not None:
            await pubsub.aclose()
