"""Rate limits for logins and registrations, on the ``limits`` library.

Memory storage with one worker; Redis storage when ``REDIS_URL`` is set, so every worker
counts the same attempts. Each limit is a list of windows ("5/minute;20/hour"): crossing the
short one makes the client wait a minute, repeating it crosses the long one — the backoff.

- ``login_account_client``: failed logins per account *from one client address* — the tight
  limit; it cannot be used to lock the owner out from their own address;
- ``login_account``: failed logins per account from all addresses together — looser, it caps a
  guesser spread over many addresses;
- ``login_client``: login attempts per client address;
- ``register_client``: registrations per client address;
- ``oidc_client``: OIDC login starts and callbacks per client address;
- ``api_bad_key_client``: API requests with an invalid key per client address;
- ``chat_user`` / ``api_user``: chat messages / API calls per *user* (the account, never the
  address: a spoofed ``X-Forwarded-For`` cannot move a user into another bucket). An admin can
  set a user's own limit (``AppUser.chat_limit`` / ``api_limit``), passed to ``hit_user``.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from elexirion_app.config import get_settings
from elexirion_app.core.errors import ConfigError, InputError

DEFAULTS = {
    "login_account_client": "5/minute;20/hour",
    "login_account": "50/hour;200/day",
    "login_client": "20/minute;200/hour",
    "register_client": "5/minute;30/hour",
    "oidc_client": "20/minute;200/hour",
    "chat_user": "30/minute;600/day",
    "api_user": "300/minute;20000/day",
    "api_bad_key_client": "30/minute;300/hour",
}
_ENV = {
    "login_account_client": "ELEXIRION_LIMIT_LOGIN_ACCOUNT_CLIENT",
    "login_account": "ELEXIRION_LIMIT_LOGIN_ACCOUNT",
    "login_client": "ELEXIRION_LIMIT_LOGIN_CLIENT",
    "register_client": "ELEXIRION_LIMIT_REGISTER_CLIENT",
    "oidc_client": "ELEXIRION_LIMIT_OIDC_CLIENT",
    "chat_user": "ELEXIRION_LIMIT_CHAT_USER",
    "api_user": "ELEXIRION_LIMIT_API_USER",
    "api_bad_key_client": "ELEXIRION_LIMIT_API_BAD_KEY_CLIENT",
}
USER_SCOPES = ("chat_user", "api_user")
MAX_RULE_CHARS = 100


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0


class Limits:
    def __init__(self, storage: Storage, rules: dict[str, list[RateLimitItem]]) -> None:
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.rules = rules

    async def _retry(self, scope: str, key: str, items: list[RateLimitItem] | None = None) -> int:
        """Seconds until every window of ``scope`` has room again for ``key`` (0: now)."""
        wait = 0.0
        now = time.time()
        for item in items if items is not None else self.rules[scope]:
            if not await self.limiter.test(item, scope, key):
                stats = await self.limiter.get_window_stats(item, scope, key)
                wait = max(wait, stats.reset_time - now)
        return max(1, math.ceil(wait)) if wait > 0 else 0

    async def check(self, scope: str, key: str) -> Verdict:
        """Whether ``key`` may try now, without counting a try."""
        retry = await self._retry(scope, key)
        return Verdict(retry == 0, retry)

    async def hit(self, scope: str, key: str) -> Verdict:
        """Count one try, atomically per window (a burst of concurrent tries cannot all pass
        a check before any is counted): refused when a window is already full."""
        for item in self.rules[scope]:
            if not await self.limiter.hit(item, scope, key):
                return Verdict(False, max(1, await self._retry(scope, key)))
        return Verdict(True)

    async def hit_user(self, scope: str, user_id: int, override: str | None = None) -> Verdict:
        """Count one chat message / API call of ``user_id`` against the user's own limit
        (``override``, set by an admin) or the server's default for ``scope``."""
        if scope not in USER_SCOPES:
            raise ValueError(f"{scope!r} is not a per-user scope")
        items = _parsed(override) if override else self.rules[scope]
        key = str(user_id)
        for item in items:
            if not await self.limiter.hit(item, scope, key):
                return Verdict(False, max(1, await self._retry(scope, key, items)))
        return Verdict(True)

    async def clear(self, scope: str, key: str) -> None:
        """Forget ``key``'s tries in ``scope`` (a successful login clears its failures)."""
        for item in self.rules[scope]:
            await self.limiter.clear(item, scope, key)


def _rules() -> dict[str, list[RateLimitItem]]:
    rules = {}
    for scope, default in DEFAULTS.items():
        text = os.environ.get(_ENV[scope]) or default
        try:
            rules[scope] = parse_many(text)
        except ValueError as exc:
            raise ConfigError(
                f"{_ENV[scope]}={text!r} is not a rate limit like '5/minute'"
            ) from exc
    return rules


_parsed_cache: dict[str, list[RateLimitItem]] = {}


def _parsed(text: str) -> list[RateLimitItem]:
    if text not in _parsed_cache:
        _parsed_cache[text] = parse_many(text)
    return _parsed_cache[text]


def check_rule(text: object) -> str | None:
    """An admin's limit for a user, cleaned: None (empty: the server's default) or a rule like
    ``30/minute;500/day``. Raises InputError for anything ``limits`` cannot parse."""
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > MAX_RULE_CHARS:
        raise InputError(f"A rate limit is text of at most {MAX_RULE_CHARS} characters.")
    cleaned = ";".join(part.strip() for part in text.split(";") if part.strip())
    if not cleaned:
        return None
    try:
        items = parse_many(cleaned)
    except ValueError:
        raise InputError(
            f"{cleaned!r} is not a rate limit: write e.g. '30/minute' or '30/minute;500/day'."
        ) from None
    if not items or any(item.amount < 1 for item in items):
        raise InputError("A rate limit allows at least one call per window.")
    return cleaned


def default_rule(scope: str) -> str:
    """The server's rule for a scope, as text (shown next to a user's own limit)."""
    return os.environ.get(_ENV[scope]) or DEFAULTS[scope]


_instances: dict[str | None, Limits] = {}


def get_limits() -> Limits:
    url = get_settings().redis_url
    if url not in _instances:
        storage: Storage
        if url:
            storage = storage_from_string(storage_uri(url), implementation="redispy")  # type: ignore[assignment]
        else:
            storage = MemoryStorage()
        _instances[url] = Limits(storage, _rules())
    return _instances[url]


def storage_uri(redis_url: str) -> str:
    """The ``limits`` async storage URI of a Redis URL (``redis://``, ``rediss://``,
    ``unix://``, as Reflex accepts them)."""
    if redis_url.startswith("async+"):
        return redis_url
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url[len("unix://") :]
    return "async+" + redis_url


def reset() -> None:
    """Forget the limiter instances (tests change the environment)."""
    _instances.clear()


def account_key(email: str) -> str:
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]


def client_address(
    client: tuple[str, int] | Any, headers: dict[str, str], trusted_hops: int
) -> str:
    """The client's address: the socket peer, or with ``trusted_hops`` proxies in front the
    address the outermost trusted proxy saw (``X-Forwarded-For`` is client-controlled)."""
    peer = str(client[0]) if client else "unknown"
    if trusted_hops > 0:
        forwarded = [p.strip() for p in headers.get("x-forwarded-for", "").split(",") if p.strip()]
        if len(forwarded) >= trusted_hops:
            return forwarded[-trusted_hops]
    return peer
