"""The shared machinery of the fake servers: aiohttp app, reply queue, request log, faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

FaultKind = Literal["truncate", "stall", "pings", "error_event", "reset"]


@dataclass(frozen=True)
class Status:
    """Answer with an HTTP error status and a JSON body (before any streaming)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reset:
    """Drop the connection before sending any response."""


@dataclass(frozen=True)
class Hang:
    """Accept the request but send nothing (not even headers) for ``seconds``."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Fault:
    """A stream fault applied after ``after`` wire events of the reply it wraps.

    ``truncate``: end the body cleanly but early; ``stall``: stop sending for ``seconds``;
    ``pings``: keep the connection alive with SSE ``ping`` events only (every 0.1 s) for
    ``seconds``; ``error_event``: send a provider error event; ``reset``: abort the TCP
    connection.
    """

    kind: FaultKind
    after: int = 2
    seconds: float = 30.0
    error_type: str = "overloaded_error"


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


SSEEvent = tuple[str | None, Any]  # (event name or None, JSON-able data)


class FakeServer:
    """A scriptable HTTP server on 127.0.0.1 with a random port."""

    def __init__(self) -> None:
        self.replies: deque[Any] = deque()
        self.requests: list[Recorded] = []
        self.default: Any = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # -- scripting -------------------------------------------------------------------
    def queue(self, *replies: Any) -> FakeServer:
        """Append replies; each request takes the next (``default`` when empty)."""
        self.replies.extend(replies)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_reply(self) -> Any:
        if self.replies:
            return self.replies.popleft()
        if self.default is None:
            return Status(500, {"error": "the fake server has no reply queued"})
        return self.default

    # -- subclass hooks ----------------------------------------------------------------
    def routes(self) -> Sequence[web.RouteDef]:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> FakeServer:
        self._closing = asyncio.Event()
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> FakeServer:
        """Run the server on its own event loop in a daemon thread (for sync callers)."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-llm-server")
        self._thread.start()
        ready.wait(10)
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._thread = None

    # -- helpers for subclasses ------------------------------------------------------
    async def record(self, request: web.Request) -> Recorded:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        self.requests.append(rec)
        return rec

    async def stall(self, seconds: float) -> None:
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def send_status(self, reply: Status) -> web.Response:
        return web.json_response(reply.body or {}, status=reply.status, headers=reply.headers)

    async def stream_sse(
        self,
        request: web.Request,
        events: Sequence[SSEEvent],
        fault: Fault | None,
        error_event: Callable[[Fault], SSEEvent],
        *,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Write ``events`` as SSE, applying ``fault`` after ``fault.after`` events."""
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", **(headers or {})}
        )
        await resp.prepare(request)
        for i, (name, data) in enumerate(events):
            if fault is not None and i == fault.after:
                done = await self._apply_fault(request, resp, fault, error_event)
                if done:
                    return resp
            await resp.write(_sse(name, data))
            if delay_s:
                await asyncio.sleep(delay_s)
        if (
            fault is not None
            and fault.after >= len(events)
            and await self._apply_fault(request, resp, fault, error_event)
        ):
            return resp
        await resp.write_eof()
        return resp

    async def _apply_fault(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        fault: Fault,
        error_event: Callable[[Fault], SSEEvent],
    ) -> bool:
        if fault.kind == "truncate":
            await resp.write_eof()
            return True
        if fault.kind == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return True
        if fault.kind == "stall":
            await self.stall(fault.seconds)
            return True
        if fault.kind == "pings":
            assert self._closing is not None
            deadline = asyncio.get_running_loop().time() + fault.seconds
            while not self._closing.is_set() and asyncio.get_running_loop().time() < deadline:
                try:
                    await resp.write(_sse("ping", {"type": "ping"}))
                except (ConnectionError, RuntimeError):
                    return True
                await asyncio.sleep(0.1)
            return True
        name, data = error_event(fault)
        await resp.write(_sse(name, data))
        await resp.write_eof()
        return True


def _sse(name: str | None, data: Any) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


async def reset_connection(request: web.Request) -> web.StreamResponse:
    """Abort the TCP connection without a response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp needs a return value; the connection is already gone.
    return web.Response(status=500)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
