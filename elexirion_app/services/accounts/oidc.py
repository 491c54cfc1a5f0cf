"""Single sign-on with OpenID Connect, on authlib's Starlette client (no reflex here).

CONTRACT:
- Providers come from the settings (``ELEXIRION_OIDC_*``, see ``config.oidc_providers``). A
  provider's discovery document is fetched on its first login (async, through authlib) and
  cached; it must name the configured issuer, and the ID token algorithms are pinned to the
  configured asymmetric ones ("none" and HS* are never accepted).
- ``begin_login`` makes the authorization URL (PKCE S256, ``state``, ``nonce``) and stores the
  three secrets server-side (``OidcPending``) under the SHA-256 of a random key; the route
  gives that key to the browser in a short-lived HttpOnly cookie. Starlette's session is not
  used.
- ``complete_login`` takes the pending login (single use: deleted whatever happens next, refused
  when expired, for another provider or with another ``state``), exchanges the code with the
  verifier, validates the ID token (signature with the provider's JWKS, iss, aud, exp, nonce),
  requires ``email_verified``, then links by the rules of ``resolve_user`` and opens a session.
  Every outcome is in the audit log ("oidc_login" ok / failed / refused, "oidc_link").
- Errors are ``OidcFailure`` with a ``code`` the login page turns into a message
  (``MESSAGES``); nothing from the provider is shown to the user.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from joserfc.errors import JoseError
from sqlalchemy import delete
from sqlmodel import Session, col, select

from elexirion_app.config import OidcProvider, get_settings
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.db.models import OidcPending, utcnow
from elexirion_app.services.accounts import audit, auth, oidc_accounts
from elexirion_app.services.accounts.oidc_accounts import (  # re-exported: the protocol's API
    MESSAGES as MESSAGES,
)
from elexirion_app.services.accounts.oidc_accounts import Identity as Identity
from elexirion_app.services.accounts.oidc_accounts import OidcFailure as OidcFailure
from elexirion_app.services.accounts.oidc_accounts import resolve_user as resolve_user

log = logging.getLogger(__name__)

PENDING_TTL = timedelta(minutes=10)
SCOPE = "openid email profile"
HTTP_TIMEOUT_S = 10.0
METADATA_MAX_AGE_S = 24 * 3600
MAX_PARAM_CHARS = 2048
LEEWAY_S = 60


# The ``?error=`` codes of the login page (shown there; no provider text is ever displayed).
@dataclass(frozen=True)
class Pending:
    provider: str
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str


# --- the authlib clients and their discovery documents ---------------------------------------

# authlib's client settings (httpx2 keyword arguments included: tests add a ``transport``).
CLIENT_KWARGS: dict[str, Any] = {
    "scope": SCOPE,
    "code_challenge_method": "S256",
    "timeout": HTTP_TIMEOUT_S,
}
_clients: dict[OidcProvider, StarletteOAuth2App] = {}
_locks: dict[OidcProvider, asyncio.Lock] = {}


def _new_client(provider: OidcProvider) -> StarletteOAuth2App:
    # A registry of its own: authlib's registry hands back the client it made first.
    client = OAuth().register(
        provider.name,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        server_metadata_url=provider.discovery_url,
        client_kwargs=dict(CLIENT_KWARGS),
    )
    assert isinstance(client, StarletteOAuth2App)
    return client


def _fresh(client: StarletteOAuth2App | None) -> bool:
    return client is not None and (
        time.time() - client.server_metadata.get("_loaded_at", 0) < METADATA_MAX_AGE_S
    )


async def client_for(provider: OidcProvider) -> StarletteOAuth2App:
    """The authlib client of ``provider`` with its discovery document fetched and checked.

    Fetched on first use and again after a day, into a new client: a login in flight keeps
    the client (and the pinned algorithms) it started with. A failed fetch is not cached."""
    client = _clients.get(provider)
    if _fresh(client):
        assert client is not None
        return client
    async with _locks.setdefault(provider, asyncio.Lock()):
        client = _clients.get(provider)
        if _fresh(client):
            assert client is not None
            return client
        client = _new_client(provider)
        try:
            meta = await client.load_server_metadata()
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("OIDC discovery of %s failed: %s", provider.name, exc)
            raise OidcFailure("oidc_unreachable", f"discovery failed: {exc}", status=502) from exc
        problem = _check_metadata(meta, provider)
        if problem:
            log.error("OIDC provider %s: %s", provider.name, problem)
            raise OidcFailure("oidc_failed", problem, status=502)
        _clients[provider] = client
        return client


def reset() -> None:
    """Forget the clients and their discovery documents (tests change the environment)."""
    _clients.clear()
    _locks.clear()


def redirect_uri(provider: OidcProvider) -> str:
    """Our callback URL, from the configured public URL (never from the request's Host)."""
    return f"{get_settings().public_url.rstrip('/')}/auth/oidc/{provider.name}/callback"


def _check_metadata(meta: dict[str, Any], provider: OidcProvider) -> str:
    """Why the discovery document cannot be used ('' if it can); pins the algorithms."""
    issuer = str(meta.get("issuer", "")).rstrip("/")
    if issuer != provider.issuer:
        return f"discovery names issuer {issuer!r}, configured {provider.issuer!r}"
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(key), str):
            return f"discovery has no {key}"
    offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    pinned = [alg for alg in provider.algorithms if alg in offered]
    if not pinned:
        return f"no ID token algorithm in common (offered {offered}, allowed {provider.algorithms})"
    # authlib's parse_id_token verifies with exactly this list.
    meta["id_token_signing_alg_values_supported"] = pinned
    return ""


# --- pending logins (state, nonce, PKCE verifier), server-side --------------------------------


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def save_pending(session: Session, key: str, pending: Pending) -> None:
    now = utcnow()
    session.exec(delete(OidcPending).where(col(OidcPending.expires_at) < now))  # type: ignore[call-overload]
    session.add(
        OidcPending(
            key_hash=_key_hash(key),
            provider=pending.provider,
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
            redirect_uri=pending.redirect_uri,
            expires_at=now + PENDING_TTL,
        )
    )


def take_pending(session: Session, key: str | None, provider: str, state: str | None) -> Pending:
    """The pending login of ``key``, deleted and committed (single use, whatever follows);
    refused unless it is live, for ``provider`` and with ``state``."""
    if not key or not state or len(key) > 128 or len(state) > MAX_PARAM_CHARS:
        raise OidcFailure("oidc_state", "no pending login cookie or no state")
    row = session.exec(select(OidcPending).where(OidcPending.key_hash == _key_hash(key))).first()
    if row is None:
        raise OidcFailure("oidc_state", "unknown or already used pending login")
    gone = session.exec(delete(OidcPending).where(col(OidcPending.id) == row.id))  # type: ignore[call-overload]
    if gone.rowcount != 1:  # consumed concurrently by another request
        raise OidcFailure("oidc_state", "pending login already used")
    session.commit()  # consumed now, even when refused below (the error rolls back the rest)
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= datetime.now(UTC):
        raise OidcFailure("oidc_state", "pending login expired")
    if row.provider != provider or not hmac.compare_digest(row.state, state):
        raise OidcFailure("oidc_state", "state or provider does not match the pending login")
    return Pending(row.provider, row.state, row.nonce, row.code_verifier, row.redirect_uri)


async def begin_login(provider: OidcProvider) -> tuple[str, str]:
    """The provider's authorization URL and the key of the pending login (for the cookie)."""
    client = await client_for(provider)
    callback = redirect_uri(provider)
    made = await client.create_authorization_url(callback)
    key = secrets.token_urlsafe(32)
    pending = Pending(provider.name, made["state"], made["nonce"], made["code_verifier"], callback)
    await in_db_thread(_save_pending_now, key, pending)
    return str(made["url"]), key


def _save_pending_now(key: str, pending: Pending) -> None:
    with session_scope() as session:
        save_pending(session, key, pending)


def _take_pending_now(key: str | None, provider: str, state: str | None) -> Pending:
    with session_scope() as session:
        return take_pending(session, key, provider, state)


# --- the callback ------------------------------------------------------------------------------


def _verified(value: object) -> bool:
    return value is True or value == "true"  # some providers send the string


async def _identity(provider: OidcProvider, pending: Pending, code: str) -> Identity:
    """Exchange ``code`` (with the PKCE verifier) and validate the ID token."""
    client = await client_for(provider)
    meta = client.server_metadata
    try:
        token = await client.fetch_access_token(
            redirect_uri=pending.redirect_uri, code=code, code_verifier=pending.code_verifier
        )
        claims_options = {
            "iss": {"essential": True, "values": [meta["issuer"]]},
            "aud": {"essential": True, "values": [provider.client_id]},
            "sub": {"essential": True},
            "exp": {"essential": True},
        }
        claims = await client.parse_id_token(
            token, nonce=pending.nonce, claims_options=claims_options, leeway=LEEWAY_S
        )
        if claims is None:
            raise OidcFailure("oidc_failed", "the token response has no ID token")
        data = dict(claims)
        if "email" not in data or "email_verified" not in data:
            # Not in the ID token: the userinfo endpoint, about the same subject only.
            info = dict(await client.userinfo(token=token))
            if info.get("sub") != data.get("sub"):
                raise OidcFailure("oidc_failed", "userinfo is about another subject")
            data["email"] = info.get("email")
            data["email_verified"] = info.get("email_verified")
    except httpx2.TransportError as exc:
        raise OidcFailure("oidc_unreachable", f"provider unreachable: {exc}", status=502) from exc
    except (AuthlibBaseError, JoseError, httpx2.HTTPError, ValueError, KeyError) as exc:
        raise OidcFailure("oidc_failed", f"{type(exc).__name__}: {exc}", status=401) from exc
    subject = data.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise OidcFailure("oidc_failed", "the ID token has no usable sub", status=401)
    email = data.get("email")
    name = data.get("name")
    return Identity(
        provider=provider.name,
        issuer=str(meta["issuer"]).rstrip("/"),
        subject=subject,
        email=email.strip() if isinstance(email, str) else "",
        email_verified=_verified(data.get("email_verified")),
        name=name.strip()[:200] if isinstance(name, str) else "",
    )


def _sign_in(identity: Identity, address: str) -> tuple[auth.UserInfo, str]:
    settings = get_settings()
    with session_scope() as session:
        user = resolve_user(session, identity, signup=settings.oidc_signup, address=address)
        token = auth.create_session(session, user.id, days=settings.session_days)
        audit.record(
            session,
            "oidc_login",
            actor_id=user.id,
            address=address,
            target=user.email,
            detail={"provider": identity.provider},
        )
    return user, token


async def complete_login(
    provider: OidcProvider,
    *,
    key: str | None,
    state: str | None,
    code: str | None,
    error: str | None,
    address: str,
    link_to: int | None = None,
) -> tuple[auth.UserInfo, str]:
    """The callback's work: the signed-in user and a new session token, or ``OidcFailure``
    (already in the audit log). With ``link_to`` (a connect started from Settings) the identity
    is connected to that user instead, and no session is made (the token is "")."""
    email = ""
    try:
        pending = await in_db_thread(_take_pending_now, key, provider.name, state)
        if error:
            raise OidcFailure("oidc_denied", f"provider answered error={error[:100]!r}")
        if not code or len(code) > MAX_PARAM_CHARS:
            raise OidcFailure("oidc_failed", "no authorization code")
        identity = await _identity(provider, pending, code)
        email = identity.email
        if link_to is not None:
            connected = await in_db_thread(oidc_accounts.connect_now, identity, link_to, address)
            return connected, ""
        return await in_db_thread(_sign_in, identity, address)
    except OidcFailure as exc:
        log.info("OIDC login via %s %s: %s", provider.name, exc.outcome, exc.message)
        await in_db_thread(
            audit.record_now,
            "oidc_login",
            outcome=exc.outcome,
            address=address,
            target=email[:320],
            detail={
                "provider": provider.name,
                "reason": exc.code,
                **({"via": "settings"} if link_to is not None else {}),
            },
        )
        raise
