"""Which login session a Reflex tab token belongs to.

A Reflex tab token is not an identity: anyone who learns one can send events or uploads
under it. Every websocket event is resolved from the session cookie of its own connection
(``web/identity.py``), which also records here the session that tab token was last used
with. A request that carries a tab token but not through that tab's websocket — the
``/_upload`` route — must present the same session cookie, or it is refused.

One worker: a bounded in-process map. Several workers (``REDIS_URL``): Redis, so the
upload can reach another worker than the websocket.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from elexirion_app.config import get_settings

log = logging.getLogger(__name__)

MAX_LOCAL = 100_000
_PREFIX = "elx:tab:"


def _key(tab_token: str) -> str:
    return hashlib.sha256(tab_token.encode()).hexdigest()


class _LocalStore:
    def __init__(self) -> None:
        self._data: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl_s)
            self._data.move_to_end(key)
            while len(self._data) > MAX_LOCAL:
                self._data.popitem(last=False)

    async def get(self, key: str) -> str | None:
        with self._lock:
            item = self._data.get(key)
            if item is None or item[1] < time.monotonic():
                self._data.pop(key, None)
                return None
            return item[0]

    async def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class _RedisStore:
    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._client: Any = aioredis.from_url(url, decode_responses=True)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        await self._client.set(_PREFIX + key, value, ex=ttl_s)

    async def get(self, key: str) -> str | None:
        value = await self._client.get(_PREFIX + key)
        return value if isinstance(value, str) else None

    async def delete(self, key: str) -> None:
        await self._client.delete(_PREFIX + key)


_stores: dict[str | None, _LocalStore | _RedisStore] = {}


def _store() -> _LocalStore | _RedisStore:
    url = get_settings().redis_url
    if url not in _stores:
        _stores[url] = _RedisStore(url) if url else _LocalStore()
    return _stores[url]


async def bind(tab_token: str, session_hash: str | None) -> None:
    """Record that ``tab_token`` was last used with the session ``session_hash`` (None: none)."""
    if not tab_token:
        return
    if session_hash:
        await _store().set(_key(tab_token), session_hash, get_settings().session_days * 86_400)
    else:
        await _store().delete(_key(tab_token))


async def bound_session(tab_token: str) -> str | None:
    """The hash of the session ``tab_token`` was last used with, if any."""
    if not tab_token or len(tab_token) > 256:
        return None
    return await _store().get(_key(tab_token))


def reset_local() -> None:
    """Forget every in-process binding (tests)."""
    _stores.clear()
