"""What the settings page shows a user about their own account: API keys, linked sign-ins,
and the rate limits that apply to them (their own, or the server's default).

Reads only the caller's rows (``user_id`` from the session, never from the page).
Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from elexirion_app.core.errors import AuthError
from elexirion_app.db.models import AppUser, OidcIdentity
from elexirion_app.services.accounts import api_keys, rate_limits


@dataclass(frozen=True)
class Identity:
    provider: str
    issuer: str
    email: str
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class Limit:
    scope: str  # "chat_user" | "api_user"
    rule: str
    own: bool  # set by an admin for this user (else the server's default)
    default: str


@dataclass(frozen=True)
class Overview:
    keys: list[api_keys.ApiKeyView]
    identities: list[Identity]
    limits: list[Limit]


def overview(session: Session, user_id: int) -> Overview:
    """The user's keys (newest first), OIDC identities and effective limits."""
    user = session.get(AppUser, user_id)
    if user is None or not user.is_active:
        raise AuthError()
    rows = session.exec(
        select(OidcIdentity)
        .where(col(OidcIdentity.user_id) == user_id)
        .order_by(col(OidcIdentity.created_at))
    ).all()
    identities = [
        Identity(r.provider, r.issuer, r.email, r.created_at, r.last_login_at) for r in rows
    ]
    limits = []
    for scope, own in (("chat_user", user.chat_limit), ("api_user", user.api_limit)):
        default = rate_limits.default_rule(scope)
        limits.append(Limit(scope, own or default, bool(own), default))
    return Overview(api_keys.list_keys(session, user_id), identities, limits)
