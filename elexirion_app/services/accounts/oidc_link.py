"""Connecting a sign-in provider to the signed-in account (Settings → "Connect").

An OIDC login never links into a self-registered password account by email (``oidc.
resolve_user``: the address was never proven, so that account may be a squatter's). Its owner
connects the provider here instead, after proving the password: ``POST /auth/oidc/{p}/connect``
(same origin, a live session) starts the usual OIDC login and also sets the ``LINK_COOKIE``:
the user id and an HMAC under the server secret over that id *and the pending login's key*, so
only this server can make one, and only for the browser holding that pending login. The
callback (a cross-site GET, which the SameSite=Strict session cookie does not accompany) then
links the identity to that user instead of signing in.

Functions taking a ``Session`` are synchronous (database): call them through ``in_db_thread``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

from sqlmodel import Session, select

from elexirion_app.config import get_settings
from elexirion_app.core.secrets import SECRET_ENV, server_secret
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, OidcIdentity, utcnow
from elexirion_app.services.accounts import audit, auth
from elexirion_app.services.accounts.oidc import Identity, OidcFailure, normalized_email

log = logging.getLogger(__name__)

LINK_COOKIE = "elx_oidc_link"
_MAX_TOKEN = 100


def _mac(user_id: int, key: str) -> str:
    secret = server_secret(get_settings().data_dir, os.environ.get(SECRET_ENV))
    message = f"oidc-link:{user_id}:{key}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def link_token(user_id: int, key: str) -> str:
    """The ``LINK_COOKIE`` value for ``user_id`` connecting with the pending login ``key``."""
    return f"{user_id}.{_mac(user_id, key)}"


def linked_user(token: str | None, key: str | None) -> int | None:
    """The user a ``LINK_COOKIE`` names, if it was made by us for this pending login."""
    if not token or not key or len(token) > _MAX_TOKEN or "." not in token:
        return None
    raw_id, mac = token.split(".", 1)
    if not raw_id.isdigit() or len(raw_id) > 18:
        return None
    user_id = int(raw_id)
    return user_id if hmac.compare_digest(mac, _mac(user_id, key)) else None


def connect(session: Session, identity: Identity, user_id: int, address: str = "") -> auth.UserInfo:
    """Link ``identity`` to ``user_id`` (who started the connect while signed in).

    Already linked to them: nothing changes. Linked to someone else: ``oidc_linked_elsewhere``.
    The account must be active. When the provider verified this very address, the account's
    email counts as proven from now on."""
    user = session.get(AppUser, user_id)
    if user is None or not user.is_active:
        raise OidcFailure("disabled", "account disabled or gone", outcome="refused", status=403)
    link = session.exec(
        select(OidcIdentity).where(
            OidcIdentity.issuer == identity.issuer, OidcIdentity.subject == identity.subject
        )
    ).first()
    if link is not None and link.user_id != user_id:
        raise OidcFailure(
            "oidc_linked_elsewhere",
            "identity linked to another account",
            outcome="refused",
            status=409,
        )
    email = normalized_email(identity) if identity.email_verified else None
    if link is None:
        session.add(
            OidcIdentity(
                user_id=user_id,
                provider=identity.provider,
                issuer=identity.issuer,
                subject=identity.subject,
                email=email or identity.email[:320],
                last_login_at=utcnow(),
            )
        )
        audit.record(
            session,
            "oidc_link",
            actor_id=user_id,
            address=address,
            target=user.email,
            detail={"provider": identity.provider, "issuer": identity.issuer, "via": "settings"},
        )
    if email == user.email and user.email_verified_at is None:
        user.email_verified_at = utcnow()
        session.add(user)
    session.flush()
    log.info("user %s connected %s", user_id, identity.provider)
    assert user.id is not None
    return auth.UserInfo(user.id, user.email, user.display_name or user.email, user.is_admin)


def connect_now(identity: Identity, user_id: int, address: str) -> auth.UserInfo:
    with session_scope() as session:
        return connect(session, identity, user_id, address)
