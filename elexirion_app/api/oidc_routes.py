"""Single sign-on (OpenID Connect): the login start and the provider's callback.

``GET /auth/oidc/{provider}/login`` redirects the browser to the provider (PKCE S256,
``state``, ``nonce``; the three kept server-side under a random key that a short-lived
HttpOnly ``SameSite=Lax`` cookie carries: the callback is a cross-site top-level GET).
``GET /auth/oidc/{provider}/callback`` hands the code to ``services/accounts/oidc`` and, on
success, sets the same HttpOnly session cookie as password login. Every failure sends the
browser back to ``/login?error=<code>`` (JSON with a 4xx/502 status for clients that ask for
JSON). ``GET /auth/oidc/{provider}/connect`` (a link of Settings: same origin, a live session —
the SameSite=Strict session cookie never comes with a navigation from another site, and a
form POST could not redirect to the provider under the CSP's ``form-action 'self'``) starts the
same login to connect the provider to the signed-in account
(``services/accounts/oidc_accounts``); its callback links instead of signing in and returns to
``/settings``. All are limited per client address (``oidc_client``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from elexirion_app.api.auth_routes import client_address, same_origin, signed_in
from elexirion_app.config import OidcProvider, get_settings
from elexirion_app.db.engine import in_session
from elexirion_app.services.accounts import auth, oidc, oidc_accounts, rate_limits
from elexirion_app.web import routes

log = logging.getLogger(__name__)

PENDING_COOKIE = "elx_oidc"
COOKIE_PATH = "/auth/oidc/"


def _fail(
    request: Request, code: str, status: int, retry: int = 0, page: str = routes.LOGIN
) -> Response:
    message = oidc.MESSAGES.get(code) or f"Too many attempts, try again in {retry} s."
    response: Response
    if "application/json" in request.headers.get("accept", ""):
        headers = {"Retry-After": str(retry)} if retry else None
        response = JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )
    else:
        query = {"error": code, **({"retry": str(retry)} if retry else {})}
        response = RedirectResponse(f"{page}?{urlencode(query)}", status_code=303)
    return response


def _forget_pending(response: Response) -> Response:
    for name in (PENDING_COOKIE, oidc_accounts.LINK_COOKIE):
        response.delete_cookie(
            name,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
        )
    return response


def _set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=int(oidc.PENDING_TTL.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
    )


async def _provider_and_limit(request: Request) -> tuple[OidcProvider | None, Response | None]:
    """The provider named in the path, or the response that refuses the request."""
    provider = get_settings().oidc_provider(str(request.path_params.get("provider", "")))
    if provider is None:
        return None, _fail(request, "oidc_provider", 404)
    verdict = await rate_limits.get_limits().hit("oidc_client", client_address(request))
    if not verdict.allowed:
        return None, _fail(request, "limited", 429, verdict.retry_after_s)
    return provider, None


async def login(request: Request) -> Response:
    provider, refused = await _provider_and_limit(request)
    if provider is None:
        assert refused is not None
        return refused
    try:
        url, key = await oidc.begin_login(provider)
    except oidc.OidcFailure as exc:
        return _fail(request, exc.code, exc.status)
    response = RedirectResponse(url, status_code=302)
    _set_cookie(response, PENDING_COOKIE, key)
    response.delete_cookie(oidc_accounts.LINK_COOKIE, path=COOKIE_PATH)  # a sign-in, not a connect
    return response


async def connect(request: Request) -> Response:
    """Start connecting a provider to the signed-in account (Settings' form)."""
    if not same_origin(request):
        return _fail(request, "origin", 403, page=routes.SETTINGS)
    provider, refused = await _provider_and_limit(request)
    if provider is None:
        assert refused is not None
        return refused
    user = await in_session(auth.user_for_token, request.cookies.get(auth.SESSION_COOKIE))
    if user is None:
        return RedirectResponse(routes.LOGIN, status_code=303)
    try:
        url, key = await oidc.begin_login(provider)
    except oidc.OidcFailure as exc:
        return _fail(request, exc.code, exc.status, page=routes.SETTINGS)
    response = RedirectResponse(url, status_code=303)
    _set_cookie(response, PENDING_COOKIE, key)
    _set_cookie(response, oidc_accounts.LINK_COOKIE, oidc_accounts.link_token(user.id, key))
    return response


async def callback(request: Request) -> Response:
    provider, refused = await _provider_and_limit(request)
    if provider is None:
        assert refused is not None
        return _forget_pending(refused)
    params = request.query_params
    key = request.cookies.get(PENDING_COOKIE)
    link_cookie = request.cookies.get(oidc_accounts.LINK_COOKIE)
    link_to = oidc_accounts.linked_user(link_cookie, key)
    page = routes.SETTINGS if link_cookie else routes.LOGIN
    if link_cookie and link_to is None:  # not made by us for this browser's pending login
        return _forget_pending(_fail(request, "oidc_link_expired", 400, page=page))
    try:
        user, token = await oidc.complete_login(
            provider,
            key=key,
            state=params.get("state"),
            code=params.get("code"),
            error=params.get("error"),
            address=client_address(request),
            link_to=link_to,
        )
    except oidc.OidcFailure as exc:
        return _forget_pending(_fail(request, exc.code, exc.status, page=page))
    if link_to is not None:
        log.info("user %s connected %s", user.id, provider.name)
        query = urlencode({"connected": provider.name})
        return _forget_pending(RedirectResponse(f"{routes.SETTINGS}?{query}", status_code=303))
    log.info("user %s logged in via %s", user.id, provider.name)
    return _forget_pending(signed_in(request, user, token))


ROUTES = [
    Route(routes.AUTH_OIDC_LOGIN, login, methods=["GET"]),
    Route(routes.AUTH_OIDC_CALLBACK, callback, methods=["GET"]),
    Route(routes.AUTH_OIDC_CONNECT, connect, methods=["GET"]),
]
