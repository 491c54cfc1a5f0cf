"""API keys: created (shown once), listed, revoked, and checked on every API request.

CONTRACT:
- A key is ``elx_`` + ``secrets.token_urlsafe(32)`` (47 characters). Only
  ``HMAC-SHA256(server secret, key)`` is stored (``lookup_hash``, unique index) with the first
  ``PREFIX_CHARS`` characters for display; the key itself is returned once by ``create_key``
  and never written anywhere.
- Every function takes the caller's ``user_id`` and touches only that user's keys: another
  user's key id is ``NotFound`` (its existence is not revealed).
- ``authenticate_key`` reads the database on every call (no cache): a revoked key, or a key
  of a disabled account, is refused from the next call on. It writes ``last_used_at`` at most
  once a minute per key (and on the first use of each UTC day), so a busy key costs one
  indexed read per request; the caller commits (``session_scope``).
- Functions are synchronous (database): call them through ``in_db_thread``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, func, select

from elexirion_app.config import get_settings
from elexirion_app.core.errors import InputError, NotFound
from elexirion_app.core.secrets import SECRET_ENV, server_secret
from elexirion_app.core.text import clean_title
from elexirion_app.db import driver_sql
from elexirion_app.db.models import ApiKey, AppUser, utcnow
from elexirion_app.services.accounts import audit
from elexirion_app.services.accounts.auth import UserInfo

log = logging.getLogger(__name__)

KEY_PREFIX = "elx_"
KEY_BYTES = 32
KEY_CHARS = len(KEY_PREFIX) + 43  # token_urlsafe(32): 43 characters of urlsafe base64
PREFIX_CHARS = len(KEY_PREFIX) + 8
MAX_NAME = 100
MAX_LIVE_KEYS = 50
TOUCH_EVERY = timedelta(minutes=1)
_KEY_RE = re.compile(r"elx_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class ApiKeyView:
    """What a user may see of a key (never its hash)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def display(self) -> str:
        """``elx_ab12cd34…``: enough to tell keys apart, useless to authenticate."""
        return f"{self.prefix}…"

    @property
    def live(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class KeyUse:
    """A successful key check: whose rights the request carries, and which key it used.

    ``first_use_today`` is True for exactly one call per key and UTC day (the audit log
    records "key used" once a day)."""

    user: UserInfo
    key_id: int
    first_use_today: bool
    chat_limit: str | None = None  # the owner's rate limits set by an admin (None: default)
    api_limit: str | None = None


def _secret() -> bytes:
    return server_secret(get_settings().data_dir, os.environ.get(SECRET_ENV))


def lookup_hash(plain: str) -> str:
    """The stored form of a key: hex HMAC-SHA256 under the server secret."""
    return hmac.new(_secret(), plain.encode("utf-8"), hashlib.sha256).hexdigest()


def is_well_formed(plain: object) -> bool:
    """Whether ``plain`` has the shape of one of our keys (checked before any lookup)."""
    return (
        isinstance(plain, str) and len(plain) == KEY_CHARS and _KEY_RE.fullmatch(plain) is not None
    )


def _view(row: ApiKey) -> ApiKeyView:
    assert row.id is not None
    return ApiKeyView(
        row.id, row.name, row.prefix, row.created_at, row.last_used_at, row.revoked_at
    )


def _user_info(user: AppUser) -> UserInfo:
    assert user.id is not None
    return UserInfo(user.id, user.email, user.display_name or user.email, user.is_admin)


def _clean_name(name: object) -> str:
    if not isinstance(name, str):
        raise InputError("The key's name must be text.")
    cleaned = clean_title(name, MAX_NAME + 1)
    if not cleaned or len(cleaned) > MAX_NAME:
        raise InputError(f"Give the key a name of 1 to {MAX_NAME} characters.")
    return cleaned


def create_key(
    session: Session, user_id: int, name: object, *, address: str = ""
) -> tuple[ApiKeyView, str]:
    """A new key for ``user_id``: its view and the plain key (returned here only, once).
    A ``key_created`` audit row (target: the display prefix) joins the caller's transaction.

    Raises InputError (bad name, disabled account, ``MAX_LIVE_KEYS`` live keys already) or
    NotFound (no such user)."""
    clean = _clean_name(name)
    # Lock the owner's row so two concurrent creations cannot both pass the count (PostgreSQL;
    # SQLite serialises writers anyway).
    user = session.exec(select(AppUser).where(AppUser.id == user_id).with_for_update()).first()
    if user is None:
        raise NotFound("no such user")
    if not user.is_active:
        raise InputError("This account is disabled: its keys would be refused.")
    live = session.exec(
        select(func.count())
        .select_from(ApiKey)
        .where(col(ApiKey.user_id) == user_id, col(ApiKey.revoked_at).is_(None))
    ).one()
    if live >= MAX_LIVE_KEYS:
        raise InputError(f"You have {MAX_LIVE_KEYS} API keys: revoke one before creating another.")
    plain = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = ApiKey(
        user_id=user_id, name=clean, prefix=plain[:PREFIX_CHARS], lookup_hash=lookup_hash(plain)
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "key_created",
        actor_id=user_id,
        subject_id=user_id,
        address=address,
        target=f"{row.prefix}…",
        detail={"key_id": row.id, "name": clean},
    )
    log.info("user %s created API key %s", user_id, row.id)
    return _view(row), plain


def list_keys(session: Session, user_id: int, *, include_revoked: bool = True) -> list[ApiKeyView]:
    """The user's keys, newest first."""
    query = select(ApiKey).where(col(ApiKey.user_id) == user_id)
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    rows = session.exec(query.order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc()))
    return [_view(row) for row in rows.all()]


def revoke_key(session: Session, user_id: int, key_id: object, *, address: str = "") -> None:
    """Revoke one of the user's keys (again: no change, no audit row). Another user's key is
    NotFound."""
    if not isinstance(key_id, int) or isinstance(key_id, bool):
        raise NotFound("no such API key")
    row = session.exec(
        select(ApiKey).where(col(ApiKey.id) == key_id, col(ApiKey.user_id) == user_id)
    ).first()
    if row is None:
        raise NotFound("no such API key")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(
            session,
            "key_revoked",
            actor_id=user_id,
            subject_id=user_id,
            address=address,
            target=f"{row.prefix}…",
            detail={"key_id": row.id, "name": row.name},
        )
        session.flush()
        log.info("user %s revoked API key %s", user_id, key_id)


# The check of every API request, built once: the key's and its owner's columns it needs
# (no ORM entities to hydrate), by the key's HMAC; run as a driver statement (compiled once,
# sent on the connection's driver cursor, values converted by the columns' result processors:
# no per-call cache key, compiled-cache lookup or result object).
_LOOKUP = (
    sa_select(
        col(ApiKey.id),
        col(ApiKey.lookup_hash),
        col(ApiKey.revoked_at),
        col(ApiKey.last_used_at),
        col(AppUser.id),
        col(AppUser.email),
        col(AppUser.display_name),
        col(AppUser.is_admin),
        col(AppUser.is_active),
        col(AppUser.chat_limit),
        col(AppUser.api_limit),
    )
    .join(AppUser, col(AppUser.id) == col(ApiKey.user_id))
    .where(col(ApiKey.lookup_hash) == bindparam("digest"))
)


def _lookup() -> Any:
    return _LOOKUP


KEYS = ApiKey.__table__  # type: ignore[attr-defined]

# "last used" written when it is older than ``before`` (or unset): built once, like _LOOKUP.
_TOUCH = (
    update(KEYS)
    .where(
        KEYS.c.id == bindparam("key_id"),
        or_(KEYS.c.last_used_at.is_(None), KEYS.c.last_used_at < bindparam("before")),
    )
    .values(last_used_at=bindparam("now"))
)


def authenticate_key(
    db: Session | Connection, plain: object, *, now: datetime | None = None
) -> KeyUse | None:
    """The owner of a live key, or None (malformed, unknown, revoked, account disabled).

    ``db``: a session (its connection is used) or a Core connection, in the caller's
    transaction. The lookup goes by the key's HMAC (an index probe reveals nothing about the
    key) and the stored hash is compared in constant time. ``now`` is for tests (default: the
    clock)."""
    if not is_well_formed(plain):
        return None
    assert isinstance(plain, str)
    digest = lookup_hash(plain)
    conn = db.connection() if isinstance(db, Session) else db
    rows = driver_sql.fetch(conn, "api_keys.lookup", _lookup, {"digest": digest})
    if not rows:
        return None
    found = rows[0]  # lookup_hash is unique
    (key_id, key_hash, revoked_at, last_used, user_id, email, name, is_admin, is_active) = found[:9]
    chat_limit, api_limit = found[9:]
    assert key_id is not None and user_id is not None  # primary keys of stored rows
    if not hmac.compare_digest(key_hash.encode(), digest.encode()):
        return None
    if revoked_at is not None or not is_active:
        return None
    first = _touch(conn, key_id, last_used, now or utcnow())
    user = UserInfo(user_id, email, name or email, is_admin)
    return KeyUse(user, key_id, first, chat_limit, api_limit)


def _touch(conn: Connection, key_id: int, last: datetime | None, now: datetime) -> bool:
    """Record a use; True when it is the key's first use of this UTC day.

    Writes nothing when the key was used less than ``TOUCH_EVERY`` ago the same day. The
    updates are conditional, so among concurrent first uses of a day exactly one wins."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if last is not None and last >= day_start and now - last < TOUCH_EVERY:
        return False
    if _set_last_used(conn, key_id, now, before=day_start):
        return True
    _set_last_used(conn, key_id, now, before=now - TOUCH_EVERY)
    return False


def _set_last_used(conn: Connection, key_id: int, now: datetime, *, before: datetime) -> bool:
    result = conn.execute(_TOUCH, {"key_id": key_id, "before": before, "now": now})
    return result.rowcount == 1
