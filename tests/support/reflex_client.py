"""A minimal Reflex websocket client for tests and benchmarks (python-socketio, like
``.web/utils/state.js``). It can carry a session cookie on the handshake, as a browser does.

The browser connects socket.io at ``/_event`` (path and namespace) with ``query: {token}``
and emits ``"event"`` packets ``{name, payload, router_data}``; the server pushes ``"event"``
packets ``{delta, events, final}`` where ``delta`` maps a state's full name to its changed
vars (``<var>_rx_state_``). This client does the same and additionally sees every websocket frame
first: it counts payload bytes and timestamps each frame on arrival (before socket.io decodes
it), then applies the update to a local mirror of the state and calls its listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio

VAR_SUFFIX = "_rx_state_"
NAMESPACE = "/_event"  # the Socket.IO namespace (and Engine.IO path) of Reflex

Listener = Callable[[dict[str, Any], float], None]


def _counting_ws_class(on_frame: Callable[[str | bytes, float], None]) -> type:
    """An aiohttp websocket response class that reports every data frame it receives."""

    class CountingWebSocket(aiohttp.ClientWebSocketResponse):
        async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
            msg = await super().receive(timeout)
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                on_frame(msg.data, time.time())
            return msg

    return CountingWebSocket


class ReflexClient:
    """One browser tab: a token, a socket.io connection and a mirror of the pushed state."""

    def __init__(
        self, base_url: str, token: str | None = None, *, cookie: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or str(uuid.uuid4())
        self.cookie = cookie  # the ``Cookie`` header sent on the websocket handshake
        self.raw_frames: list[str] = []
        self.state: dict[str, dict[str, Any]] = {}
        self.frontend_events: list[dict[str, Any]] = []
        self.bytes_received = 0
        self.frames_received = 0
        self.listeners: list[Listener] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._http: aiohttp.ClientSession | None = None
        self.sio: socketio.AsyncClient | None = None

    # -- connection ----------------------------------------------------------------------
    async def connect(self, timeout_s: float = 20.0) -> None:
        self._http = aiohttp.ClientSession(ws_response_class=_counting_ws_class(self._on_frame))
        self.sio = socketio.AsyncClient(
            reconnection=False, http_session=self._http, handle_sigint=False
        )
        await self.sio.connect(
            f"{self.base_url}?token={self.token}",
            headers={"Cookie": self.cookie} if self.cookie else {},
            transports=["websocket"],
            socketio_path="/_event",
            namespaces=[NAMESPACE],
            wait_timeout=timeout_s,
        )

    async def close(self) -> None:
        if self.sio is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail again
                await self.sio.disconnect()
        if self._http is not None:
            await self._http.close()

    # -- sending -------------------------------------------------------------------------
    async def emit(self, name: str, payload: dict[str, Any], pathname: str) -> None:
        """Send one event the way state.js does (router_data filled from the page location)."""
        assert self.sio is not None
        await self.sio.emit(
            "event",
            {
                "name": name,
                "payload": payload,
                "router_data": {"pathname": pathname, "asPath": pathname},
            },
            namespace=NAMESPACE,
        )

    # -- receiving -----------------------------------------------------------------------
    def var(self, state: str, name: str, default: Any = None) -> Any:
        return self.state.get(state, {}).get(name + VAR_SUFFIX, default)

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds after some update (TimeoutError otherwise)."""
        if predicate():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout_s)
        finally:
            self._waiters.remove(entry)

    def _on_frame(self, data: str | bytes, arrived: float) -> None:
        self.frames_received += 1
        if isinstance(data, str):
            self.raw_frames.append(data)
        self.bytes_received += len(data.encode()) if isinstance(data, str) else len(data)
        # Engine.IO MESSAGE (4) carrying a Socket.IO EVENT (2): 42/_event,["event",{...}]
        if not isinstance(data, str) or not data.startswith("42"):
            return
        start = data.find("[")
        try:
            packet = json.loads(data[start:])
        except ValueError:
            return
        if not (isinstance(packet, list) and len(packet) >= 2 and packet[0] == "event"):
            return
        update = packet[1]
        if not isinstance(update, dict):
            return
        for substate, changed in (update.get("delta") or {}).items():
            if isinstance(changed, dict):
                self.state.setdefault(substate, {}).update(changed)
        self.frontend_events.extend(update.get("events") or [])
        for listener in list(self.listeners):
            listener(update, arrived)
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate():
                fut.set_result(None)
