"""OIDC account rules (no reflex, no authlib): which account an identity signs in to, and
connecting a provider to the signed-in account (Settings → "Connect").

CONTRACT:
- ``resolve_user`` (a sign-in): the provider must have verified the email, which must name the
  same mailbox once lower-cased; an existing (issuer, sub) link wins; else the account with that
  email is linked — only if that account's email was proven (``email_verified_at``: an operator
  created it, or an earlier OIDC sign-up or link), never a self-registered password account
  (anyone can register someone else's address: the pre-account hijack); else a sign-up.
- ``connect`` (Settings): the same identity linked to the signed-in user, whatever its email,
  unless it is linked to someone else. The ``LINK_COOKIE`` that carries the user through the
  provider's round trip is the user id and an HMAC under the server secret over that id *and
  the pending login's key*: only this server can make one, only for the browser holding that
  pending login. (The callback is a cross-site GET, which the SameSite=Strict session cookie
  does not accompany.)
- Errors are ``OidcFailure`` with a ``code`` the pages turn into a message (``MESSAGES``);
  nothing from the provider is shown to the user.
- Functions taking a ``Session`` are synchronous (database): call them through ``in_db_thread``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import string
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from elexirion_app.config import get_settings
from elexirion_app.core.errors import AuthError, InputError
from elexirion_app.core.secrets import SECRET_ENV, server_secret
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, OidcIdentity, utcnow
from elexirion_app.services.accounts import audit, auth

log = logging.getLogger(__name__)

LINK_COOKIE = "elx_oidc_link"
_MAX_TOKEN = 100

MESSAGES = {
    "oidc_provider": "That sign-in provider is not configured.",
    "oidc_state": "That sign-in expired or was started in another browser. Please start again.",
    "oidc_denied": "The sign-in was cancelled at the provider.",
    "oidc_failed": "Signing in with the provider failed. Please try again.",
    "oidc_unreachable": "The sign-in provider could not be reached. Please try again later.",
    "oidc_unverified": "The provider has not verified your email address, so it cannot sign "
    "you in here.",
    "oidc_no_account": "No account uses this email. Ask an administrator for one, then sign in "
    "again.",
    "disabled": "This account is disabled.",
    "oidc_link_required": "An account with this email already exists and signs in with a "
    "password. Sign in with it, then connect this provider in Settings (or ask an "
    "administrator).",
    "oidc_linked_elsewhere": "That provider account is already connected to another account here.",
    "origin": "That form came from another site.",
    "oidc_link_expired": "Connecting the provider expired or was started by another account. "
    "Please start again from Settings.",
}


class OidcFailure(AuthError):
    """An OIDC login that did not succeed; ``code`` is the login page's message key."""

    def __init__(
        self, code: str, reason: str, *, outcome: str = "failed", status: int = 400
    ) -> None:
        self.code = code
        self.outcome = outcome  # the audit outcome: failed | refused
        self.status = status  # for clients that asked for JSON
        super().__init__(reason, user_message=MESSAGES[code])


@dataclass(frozen=True)
class Identity:
    """What a validated ID token (and the userinfo endpoint) said about the user."""

    provider: str
    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str = ""


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def normalized_email(identity: Identity) -> str:
    """The identity's email as accounts store it, or ``OidcFailure`` (``oidc_unverified``)."""
    raw = identity.email.strip()
    if raw.lower() != raw.translate(_ASCII_LOWER):
        # A character that only lower-cases to another one (KELVIN SIGN → "k"): the provider
        # verified a different mailbox than the address it would link to.
        raise OidcFailure(
            "oidc_unverified",
            "email changes under Unicode case mapping",
            outcome="refused",
            status=403,
        )
    try:
        return auth.normalize_email(identity.email)
    except InputError:
        raise OidcFailure(
            "oidc_unverified", "no usable email", outcome="refused", status=403
        ) from None


def resolve_user(
    session: Session, identity: Identity, *, signup: bool, address: str = ""
) -> auth.UserInfo:
    """The account ``identity`` signs in to, linking or creating it by the rules:

    1. the email must be verified by the provider (else refused), and name the same mailbox
       once lower-cased (no character whose lower case is another one, e.g. KELVIN SIGN);
    2. an existing (issuer, sub) link → its user;
    3. else an account with that email → linked to it (audit "oidc_link") — unless it signs
       in with a password and its email was never proven (self-registered: anyone can
       register someone else's address), which is refused (``oidc_link_required``): its owner
       connects the provider from Settings after a password sign-in (``oidc_link``);
    4. else, with ``signup``, a new member account without a password; else refused.
    A disabled account is refused in every case (and never linked). A link proves the email:
    ``email_verified_at`` is set."""
    if not identity.email_verified:
        raise OidcFailure("oidc_unverified", "email not verified", outcome="refused", status=403)
    email = normalized_email(identity)
    link = session.exec(
        select(OidcIdentity).where(
            OidcIdentity.issuer == identity.issuer, OidcIdentity.subject == identity.subject
        )
    ).first()
    if link is not None:
        user = session.get(AppUser, link.user_id)
        if user is None or not user.is_active:
            raise OidcFailure("disabled", "account disabled", outcome="refused", status=403)
        link.email, link.last_login_at = email, utcnow()
        session.add(link)
        return _user_info(user)
    user = session.exec(select(AppUser).where(AppUser.email == email)).first()
    if user is None:
        if not signup:
            raise OidcFailure("oidc_no_account", "no account", outcome="refused", status=403)
        user = AppUser(
            email=email,
            password_hash="",
            display_name=identity.name,
            is_admin=False,
            email_verified_at=utcnow(),
        )
        session.add(user)
        _flush(session)
        log.info("OIDC signup of user %s via %s", user.id, identity.provider)
    elif not user.is_active:
        raise OidcFailure("disabled", "account disabled", outcome="refused", status=403)
    elif user.password_hash and user.email_verified_at is None:
        raise OidcFailure(
            "oidc_link_required",
            "a password account whose email was never proven",
            outcome="refused",
            status=409,
        )
    elif user.email_verified_at is None:
        user.email_verified_at = utcnow()
        session.add(user)
    assert user.id is not None
    session.add(
        OidcIdentity(
            user_id=user.id,
            provider=identity.provider,
            issuer=identity.issuer,
            subject=identity.subject,
            email=email,
            last_login_at=utcnow(),
        )
    )
    _flush(session)
    audit.record(
        session,
        "oidc_link",
        actor_id=user.id,
        address=address,
        target=email,
        detail={"provider": identity.provider, "issuer": identity.issuer},
    )
    return _user_info(user)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent first login of the same identity or email
        raise OidcFailure("oidc_failed", "concurrent first login") from exc


def _user_info(user: AppUser) -> auth.UserInfo:
    assert user.id is not None
    return auth.UserInfo(user.id, user.email, user.display_name or user.email, user.is_admin)


# --- connecting from Settings ------------------------------------------------------------


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
