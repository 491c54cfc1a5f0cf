"""Log in, register, log out: the only places that set or clear the session cookie.

They are HTML form posts (``/auth/login`` …) answered with a 303 back to a page, so the
cookie is ``HttpOnly`` (scripts never see it) and the next page load's websocket carries it.
A client that asks for JSON (``Accept: application/json``) gets JSON with a real status code
(401, 409, 429 with ``Retry-After``) instead of the redirect.

Brute force is limited before any password is checked (``services/rate_limits``): failed
logins per account and client address (tight) and per account (loose, against spread-out
guessing), attempts per client address, registrations per client address. Forms
posted from another origin are refused (login CSRF).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from elexirion_app.config import get_settings
from elexirion_app.core.errors import (
    AuthError,
    Conflict,
    ElexirionError,
    InputError,
    InvalidCredentials,
)
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.services.accounts import audit, auth, rate_limits
from elexirion_app.web import routes

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def same_origin(request: Request) -> bool:
    """A browser form must come from our own pages; clients without Origin are scripts."""
    origin = request.headers.get("origin")
    if origin == "null":  # a sandboxed frame or a privacy redirect: never our own page
        return False
    if not origin:
        return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
    allowed = {urlsplit(get_settings().public_url).netloc, request.headers.get("host", "")}
    return urlsplit(origin).netloc in allowed


def client_address(request: Request) -> str:
    # Every X-Forwarded-For line, in order: a proxy that adds its own line (rather than
    # appending to the client's) must not leave the client's forged first line in charge.
    forwarded = ", ".join(request.headers.getlist("x-forwarded-for"))
    return rate_limits.client_address(
        request.client, {"x-forwarded-for": forwarded}, get_settings().trusted_proxies
    )


def _fail(
    request: Request,
    page: str,
    code: str,
    status: int,
    message: str,
    retry: int = 0,
    email: str = "",
) -> Response:
    """The refusal: JSON for a script, else back to the form's page with the error code (and
    the email that was typed, so the form shows it again; never the password)."""
    if _wants_json(request):
        headers = {"Retry-After": str(retry)} if retry else None
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )
    query = {"error": code, **({"retry": str(retry)} if retry else {})}
    typed = email.strip()
    if typed and len(typed) <= routes.MAX_ECHOED_EMAIL:
        query["email"] = typed
    return RedirectResponse(f"{page}?{urlencode(query)}", status_code=303)


def _limited(request: Request, page: str, retry: int, email: str = "") -> Response:
    return _fail(
        request,
        page,
        "limited",
        429,
        f"Too many attempts, try again in {retry} s.",
        retry,
        email,
    )


def signed_in(request: Request, user: auth.UserInfo, token: str) -> Response:
    settings = get_settings()
    response: Response
    if _wants_json(request):
        response = JSONResponse({"user": {"id": user.id, "email": user.email}})
    else:
        response = RedirectResponse(routes.CHAT, status_code=303)
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=settings.session_days * 86_400,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    return response


async def _form(request: Request) -> dict[str, str]:
    """The posted fields (urlencoded or JSON), size-capped, strings only."""
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        raise InputError("The form is too large.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InputError("The form is too large.")
    data: Any
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise InputError("The request body is not valid JSON.") from None
    else:
        data = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if not isinstance(data, dict):
        raise InputError("The request body must be an object.")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _tried(email: str) -> str:
    """The account a login tried, for the audit log (never the password)."""
    try:
        return auth.normalize_email(email)
    except InputError:
        return (email or "").strip()[:100]


def _check_login(email: str, password: str, address: str) -> tuple[auth.UserInfo, str]:
    with session_scope() as session:
        user = auth.authenticate(session, email, password)
        token = auth.create_session(session, user.id, days=get_settings().session_days)
        audit.record(session, "login", actor_id=user.id, address=address, target=user.email)
    return user, token


def _register(email: str, password: str, address: str) -> tuple[auth.UserInfo, str]:
    with session_scope() as session:
        user = auth.register(session, email, password)
        token = auth.create_session(session, user.id, days=get_settings().session_days)
        audit.record(session, "register", actor_id=user.id, address=address, target=user.email)
    return user, token


async def _audit_login(outcome: str, email: str, address: str, **detail: object) -> None:
    await in_db_thread(
        audit.record_now,
        "login",
        outcome=outcome,
        address=address,
        target=_tried(email),
        detail=detail,
    )


async def login(request: Request) -> Response:
    page = routes.LOGIN
    if not same_origin(request):
        return _fail(request, page, "origin", 403, "That form came from another site.")
    limits = rate_limits.get_limits()
    try:
        form = await _form(request)
    except InputError as exc:
        return _fail(request, page, "server", 400, exc.user_message)
    email = form.get("email", "")
    account = rate_limits.account_key(email)
    client = client_address(request)
    verdict = await limits.hit("login_client", client)
    if not verdict.allowed:
        await _audit_login("locked", email, client, limit="login_client")
        return _limited(request, page, verdict.retry_after_s, email)
    # The account's slots are taken before the password is checked, atomically: concurrent
    # tries cannot all pass a check first. A successful login gives them back.
    pair = f"{account}|{client}"
    for scope, key in (("login_account_client", pair), ("login_account", account)):
        verdict = await limits.hit(scope, key)
        if not verdict.allowed:
            await _audit_login("locked", email, client, limit=scope)
            return _limited(request, page, verdict.retry_after_s, email)
    try:  # argon2 and the database off the event loop, on the password pool
        user, token = await auth.run_password_work(
            _check_login, email, form.get("password", ""), client
        )
    except InvalidCredentials as exc:
        await _audit_login("failed", email, client)
        log.info("login failed", extra={"event": "login_failed", "client": client})
        return _fail(request, page, "credentials", 401, exc.user_message, email=email)
    except ElexirionError as exc:
        return _fail(request, page, "server", 400, exc.user_message, email=email)
    await limits.clear("login_account_client", pair)
    await limits.clear("login_account", account)
    log.info("user %s logged in", user.id, extra={"event": "login_ok", "user_id": user.id})
    return signed_in(request, user, token)


async def register(request: Request) -> Response:
    page = routes.REGISTER
    if not same_origin(request):
        return _fail(request, page, "origin", 403, "That form came from another site.")
    try:
        form = await _form(request)
    except InputError as exc:
        return _fail(request, page, "server", 400, exc.user_message)
    password, email = form.get("password", ""), form.get("email", "")
    if "confirm" in form and form["confirm"] != password:
        return _fail(request, page, "mismatch", 400, "The two passwords differ.", email=email)
    client = client_address(request)
    verdict = await rate_limits.get_limits().hit("register_client", client)
    if not verdict.allowed:
        return _limited(request, page, verdict.retry_after_s, email)
    try:
        user, token = await auth.run_password_work(_register, email, password, client)
    except Conflict as exc:
        return _fail(request, page, "exists", 409, exc.user_message, email=email)
    except InputError as exc:
        code = "email" if "email" in exc.user_message else "password"
        return _fail(request, page, code, 400, exc.user_message, email=email)
    except AuthError as exc:
        return _fail(request, page, "server", 400, exc.user_message, email=email)
    return signed_in(request, user, token)


def _revoke(token: str | None, address: str) -> None:
    with session_scope() as session:
        user = auth.user_for_token(session, token)
        auth.revoke_session(session, token)
        if user is not None:
            audit.record(session, "logout", actor_id=user.id, address=address, target=user.email)


async def logout(request: Request) -> Response:
    if not same_origin(request):
        return _fail(request, routes.LOGIN, "origin", 403, "That form came from another site.")
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        await in_db_thread(_revoke, token, client_address(request))
    response: Response = (
        JSONResponse({"ok": True})
        if _wants_json(request)
        else RedirectResponse(routes.LOGIN, status_code=303)
    )
    response.delete_cookie(
        auth.SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=get_settings().secure_cookies,
    )
    return response


ROUTES = [
    Route(routes.AUTH_LOGIN, login, methods=["POST"]),
    Route(routes.AUTH_REGISTER, register, methods=["POST"]),
    Route(routes.AUTH_LOGOUT, logout, methods=["POST"]),
]
