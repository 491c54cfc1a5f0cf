"""Accounts and server-side sessions.

Passwords are hashed with argon2id; session tokens come from ``secrets.token_urlsafe`` and
only their SHA-256 is stored, so a database leak does not leak live sessions.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select
from starlette.requests import cookie_parser

from elexirion_app.core.errors import Conflict, InputError, InvalidCredentials
from elexirion_app.core.threads import WorkPool
from elexirion_app.db.models import AppUser, AuthSession, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

_hasher = PasswordHasher()
# The HttpOnly cookie that carries the session token; set and cleared only by server routes.
SESSION_COOKIE = "elx_session"
MAX_TOKEN_CHARS = 256
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# Verified against when the email is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


@dataclass(frozen=True)
class UserInfo:
    """What the rest of the app may know about a user (never the hash)."""

    id: int
    email: str
    display_name: str
    is_admin: bool


def _info(user: AppUser) -> UserInfo:
    assert user.id is not None
    return UserInfo(user.id, user.email, user.display_name or user.email, user.is_admin)


# Password hashing is CPU-heavy (argon2id, ~250 ms and 64 MB here). It runs on its own small
# pool, never the shared default executor: a burst of logins queued there delayed every chat
# stream of the worker by seconds (bench/login_during_chat.py), because Reflex and our
# handlers use that pool for their quick database and state work.
def _lower_priority() -> None:
    """Hash at a lower CPU priority than the event loop (Linux: per-thread nice)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted: same priority
        log.info("password threads keep normal priority: %s", exc)


_PASSWORDS = WorkPool("argon2", "ELEXIRION_PASSWORD_THREADS", 1, initializer=_lower_priority)


async def run_password_work(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` (which hashes or verifies a password) on the password pool."""
    return await _PASSWORDS.run(fn, *args)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    """The address as accounts store it (lower case), or InputError. A non-ASCII character
    whose lower case is an ASCII letter (KELVIN SIGN "\u212a" → "k", "\u0130" → "i̇") is
    refused: "\u212aate@example.com" names another mailbox than "kate@example.com", yet
    lower-cases to it — registering it would squat Kate's address."""
    raw = (email or "").strip()
    for char in raw:
        if not char.isascii() and any(c.isascii() and c.isalpha() for c in char.lower()):
            raise InputError("That email address holds a character that only looks like a letter.")
    email = raw.lower()
    if not EMAIL_RE.match(email):
        raise InputError("Enter a valid email address.")
    return email


def check_password_rules(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise InputError(f"The password must have at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"The password must have at most {MAX_PASSWORD} characters.")


def register(session: Session, email: str, password: str, display_name: str = "") -> UserInfo:
    """Create an account; the first account becomes admin. Raises InputError / Conflict."""
    email = normalize_email(email)
    check_password_rules(password)
    if session.exec(select(AppUser).where(AppUser.email == email)).first():
        raise Conflict("An account with this email already exists. Log in instead.")
    is_first = (session.exec(select(func.count()).select_from(AppUser)).one() or 0) == 0
    user = AppUser(
        email=email,
        password_hash=hash_password(password),
        display_name=(display_name or "").strip()[:200],
        is_admin=is_first,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same email
        session.rollback()
        raise Conflict("An account with this email already exists. Log in instead.") from exc
    log.info("registered user %s (admin=%s)", user.id, user.is_admin)
    return _info(user)


def authenticate(session: Session, email: str, password: str) -> UserInfo:
    """Check credentials; the same error for an unknown email and a wrong password."""
    try:
        email = normalize_email(email)
    except InputError:
        raise InvalidCredentials() from None
    user = session.exec(select(AppUser).where(AppUser.email == email)).first()
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH, password or "")
        raise InvalidCredentials()
    if not verify_password(user.password_hash, password or ""):
        raise InvalidCredentials()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    return _info(user)


def create_session(session: Session, user_id: int, days: int = 14) -> str:
    """Start a server-side session; returns the raw token (shown to the client once)."""
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            user_id=user_id,
            token_hash=hash_token(token),
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    session.flush()
    return token


def token_from_cookie_header(header: str | None) -> str | None:
    """The session token in a ``Cookie:`` request header, or None (absent or malformed).

    Parsed as browsers send it (Starlette's lenient parser): a malformed cookie of some other
    site on the same host must not hide ours, as it does with ``http.cookies``."""
    if not header or len(header) > 16_384:
        return None
    value = cookie_parser(header).get(SESSION_COOKIE, "")
    return value if value and len(value) <= MAX_TOKEN_CHARS else None


def user_for_token(session: Session, token: str | None) -> UserInfo | None:
    """The user of a live session token, or None (unknown, expired, revoked, inactive)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    row = session.exec(
        select(AuthSession, AppUser)
        .join(AppUser, AppUser.id == AuthSession.user_id)  # type: ignore[arg-type]
        .where(AuthSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    auth, user = row
    if auth.revoked_at is not None or auth.expires_at <= utcnow() or not user.is_active:
        return None
    return _info(user)


def revoke_session(session: Session, token: str | None) -> None:
    if not token:
        return
    auth = session.exec(
        select(AuthSession).where(AuthSession.token_hash == hash_token(token))
    ).first()
    if auth is not None and auth.revoked_at is None:
        auth.revoked_at = utcnow()
        session.add(auth)


def own_limits(session: Session, user_id: int) -> tuple[str | None, str | None]:
    """(chat limit, API limit) an admin set for the user; None: the server's default."""
    user = session.get(AppUser, user_id)
    if user is None:
        return None, None
    return user.chat_limit, user.api_limit
