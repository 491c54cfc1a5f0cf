"""Who calls: ``Authorization: Bearer <API key>`` checked in the database on every request,
then the caller's per-user API rate limit. A request without a valid key is refused before
any work; so is a client address sending too many invalid keys."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from elexirion_app.api.auth_routes import client_address
from elexirion_app.api.http.errors import ApiError
from elexirion_app.db.engine import get_engine, in_db_thread
from elexirion_app.services.accounts import api_keys, audit, rate_limits
from elexirion_app.services.accounts.auth import UserInfo

bearer = HTTPBearer(auto_error=False, description="An API key from Settings: `elx_…`")


@dataclass(frozen=True)
class Caller:
    user: UserInfo
    key_id: int
    address: str
    chat_limit: str | None
    api_limit: str | None

    @property
    def id(self) -> int:
        return self.user.id


def _check_key(plain: str, address: str) -> api_keys.KeyUse | None:
    """The key's check and its once-a-day audit row in one transaction on a Core connection
    (twice per API run: no ORM session to open, flush and close)."""
    with get_engine().begin() as conn:
        use = api_keys.authenticate_key(conn, plain)
        if use is not None and use.first_use_today:
            audit.record_on(
                conn,
                "key_used",
                actor_id=use.user.id,
                address=address,
                target=f"key {use.key_id}",
            )
        return use


def limited(retry_after_s: int, what: str) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"Too many {what}: try again in {retry_after_s} s.",
        headers={"Retry-After": str(retry_after_s)},
        extra={"retry_after_s": retry_after_s},
    )


async def caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Caller:
    address = client_address(request)
    limits = rate_limits.get_limits()
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "unauthorized",
            "Send an API key: 'Authorization: Bearer elx_…' (create one in Settings).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    use = (
        await in_db_thread(_check_key, credentials.credentials, address)
        if api_keys.is_well_formed(credentials.credentials)
        else None
    )
    if use is None:
        verdict = await limits.hit("api_bad_key_client", address)
        if not verdict.allowed:
            raise limited(verdict.retry_after_s, "requests with invalid keys")
        raise ApiError(
            401,
            "unauthorized",
            "This API key is not valid (unknown, revoked, or its account is disabled).",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    verdict = await limits.hit_user("api_user", use.user.id, use.api_limit)
    if not verdict.allowed:
        raise limited(verdict.retry_after_s, "API calls")
    return Caller(use.user, use.key_id, address, use.chat_limit, use.api_limit)
