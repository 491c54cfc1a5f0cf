"""Every route of the app, in one place."""

from __future__ import annotations

from urllib.parse import quote

INDEX = "/"
LOGIN = "/login"
REGISTER = "/register"
CHAT = "/chat"
RUNS = "/runs"
RUN_VIEW = "/runs/view"
WORKSPACE = "/workspace"
PIPELINES = "/pipelines"
PIPELINE_EDIT = "/pipelines/edit"
RUN_TRACE = "/runs/trace"
SETTINGS = "/settings"
ADMIN = "/admin"
DASHBOARD = "/dashboard"
PUBLIC = frozenset({LOGIN, REGISTER})
# Server routes (not pages): the only places the HttpOnly session cookie is set or cleared.
AUTH_LOGIN = "/auth/login"
# A refused login / register form comes back with its email in the query (?email=), up to
# this long (the auth routes write it, the page reads it back into the field).
MAX_ECHOED_EMAIL = 254
AUTH_REGISTER = "/auth/register"
AUTH_LOGOUT = "/auth/logout"
# Single sign-on (OIDC): the login start redirects to the provider, which sends the browser
# back to the callback (which sets the session cookie).
AUTH_OIDC_LOGIN = "/auth/oidc/{provider}/login"
AUTH_OIDC_CALLBACK = "/auth/oidc/{provider}/callback"
# Settings → "Connect": a signed-in account links a provider (a same-site link).
AUTH_OIDC_CONNECT = "/auth/oidc/{provider}/connect"


def oidc_login(provider: str) -> str:
    return AUTH_OIDC_LOGIN.format(provider=quote(provider, safe=""))


def oidc_connect(provider: str) -> str:
    return AUTH_OIDC_CONNECT.format(provider=quote(provider, safe=""))


def chat_conversation(conversation_id: int) -> str:
    return f"{CHAT}?c={int(conversation_id)}"


def run_view(run_id: str) -> str:
    return f"{RUN_VIEW}?id={run_id}"


def pipeline_edit(name: str, *, shipped: bool = False) -> str:
    return f"{PIPELINE_EDIT}?{'shipped' if shipped else 'name'}={quote(name, safe='/')}"


def run_trace(run_id: str) -> str:
    return f"{RUN_TRACE}?id={run_id}"
