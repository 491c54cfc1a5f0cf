"""Real OpenID providers for tests, and a bridge that serves a WSGI app to an async httpx2
client in-process (authlib's async client speaks httpx2): no port, no network.

- ``pkce_provider``: a tiny provider built from authlib's own server classes (Flask
  integration): authorization code grant with PKCE *required* (``rfc7636.CodeChallenge``),
  OpenID Connect ID tokens signed with a generated RSA key (or, to test our pinning, any
  algorithm the test asks for). The authorization endpoint approves ``idp.subject`` at once.
- ``WsgiBridge``: an ``httpx2.AsyncBaseTransport`` that runs requests through a WSGI app
  (``oidc_provider_mock.app()`` or ``pkce_provider``) on a thread, so unit tests need no port.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import flask
import httpx2
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode as _OpenIDCode
from authlib.oidc.core import UserInfo
from joserfc.jwk import KeySet, OctKey, RSAKey

CLIENT_ID = "elexirion-test"
CLIENT_SECRET = "test-secret-7f3a9"


class WsgiBridge(httpx2.AsyncBaseTransport):
    """Async requests answered by WSGI apps chosen by host:port (httpx2's WSGI transport, on
    a thread); any other host cannot be reached (``httpx2.ConnectError``)."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self._sync = {host: httpx2.WSGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sync = self._sync.get(request.url.netloc.decode())
        if sync is None:
            raise httpx2.ConnectError(f"nothing listens at {request.url.netloc!r}")
        body = await request.aread()
        sync_request = httpx2.Request(
            request.method, request.url, headers=request.headers, content=body
        )

        def run() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = sync.handle_request(sync_request)
            return response.status_code, response.headers.raw, response.read()

        status, headers, content = await asyncio.to_thread(run)
        return httpx2.Response(status, headers=headers, content=content)


@dataclass
class Idp:
    """The knobs and records of a ``pkce_provider``."""

    issuer: str
    subject: str = "user-1"
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    alg: str = "RS256"
    advertised_algs: list[str] = field(default_factory=lambda: ["RS256"])
    # Claims put over the ID token's own (e.g. another ``aud``).
    override: dict[str, Any] = field(default_factory=dict)
    rsa: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "rsa-1"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_errors: list[str] = field(default_factory=list)

    def oct_key(self) -> OctKey:
        return OctKey.import_key(CLIENT_SECRET.encode(), {"kid": "shared"})

    def signing_key(self) -> Any:
        if self.alg.startswith("HS"):
            return self.oct_key().as_dict()
        return self.rsa.as_dict(private=True)


@dataclass
class _Client(ClientMixin):
    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in ("openid", "email", "profile"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri.startswith("http://")

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code:
    code: str
    data: dict[str, Any]

    def get_redirect_uri(self) -> str:
        return str(self.data["redirect_uri"])

    def get_scope(self) -> str:
        return str(self.data["scope"])

    def get_nonce(self) -> str | None:
        return self.data.get("nonce")

    def get_auth_time(self) -> int:
        return int(self.data["auth_time"])

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def is_expired(self) -> bool:
        return False

    # rfc7636.CodeChallenge reads these two
    @property
    def code_challenge(self) -> str | None:
        return self.data.get("code_challenge")

    @property
    def code_challenge_method(self) -> str | None:
        return self.data.get("code_challenge_method")


def pkce_provider(idp: Idp) -> flask.Flask:
    app = flask.Flask("pkce-idp")
    server = AuthorizationServer()
    client = _Client()

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, request: Any) -> None:
            data = request.payload.data
            idp.codes[code] = {
                "redirect_uri": data.get("redirect_uri"),
                "scope": data.get("scope", ""),
                "nonce": data.get("nonce"),
                "code_challenge": data.get("code_challenge"),
                "code_challenge_method": data.get("code_challenge_method"),
                "sub": request.user,
                "auth_time": int(time.time()),
            }

        def query_authorization_code(self, code: str, client: Any) -> _Code | None:
            data = idp.codes.get(code)
            return _Code(code, data) if data else None

        def delete_authorization_code(self, authorization_code: _Code) -> None:
            idp.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: _Code) -> str:
            return str(authorization_code.data["sub"])

    class OpenIDCode(_OpenIDCode):
        def exists_nonce(self, nonce: str, request: Any) -> bool:
            return False

        def get_jwt_config(self, grant: Any, client: Any = None) -> dict[str, Any]:
            kid = "shared" if idp.alg.startswith("HS") else "rsa-1"
            return {
                "key": idp.signing_key(),
                "alg": idp.alg,
                "kid": kid,
                "exp": 600,
                "iss": idp.issuer,
            }

        def generate_user_info(self, user: str, scope: str) -> UserInfo:
            return UserInfo(sub=user, **idp.claims.get(user, {}), **idp.override)

    server.init_app(app, query_client=lambda cid: client if cid == CLIENT_ID else None)
    server.save_token = lambda token, request: None  # type: ignore[method-assign]
    server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenIDCode()])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return flask.jsonify(
            {
                "issuer": idp.issuer,
                "authorization_endpoint": idp.issuer + "/authorize",
                "token_endpoint": idp.issuer + "/token",
                "jwks_uri": idp.issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": idp.advertised_algs,
                "code_challenge_methods_supported": ["S256"],
            }
        )

    @app.get("/jwks")
    def jwks() -> Any:
        # With an HS* algorithm the (misconfigured) provider publishes its symmetric key too:
        # only our algorithm pinning stands between that and a forged token.
        keys = [idp.rsa, idp.oct_key()] if idp.alg.startswith("HS") else [idp.rsa]
        return flask.jsonify(KeySet(keys).as_dict(private=False))

    @app.get("/authorize")
    def authorize() -> Any:
        grant = server.get_consent_grant(end_user=idp.subject)
        return server.create_authorization_response(grant_user=idp.subject, grant=grant)

    @app.post("/token")
    def token() -> Any:
        idp.token_requests.append(dict(flask.request.form))
        response = server.create_token_response()
        if response.status_code != 200:
            idp.token_errors.append(response.get_json().get("error", ""))
        return response

    return app
