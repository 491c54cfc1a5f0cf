"""The Reflex app: registers pages (and, later, the API). Nothing else lives here."""

from __future__ import annotations

from typing import Any

import reflex as rx
from starlette.applications import Starlette

from elexirion_app.api import auth_routes, oidc_routes
from elexirion_app.api.http import app as http_api
from elexirion_app.api.security_headers import security_headers
from elexirion_app.api.upload_guard import guard_uploads
from elexirion_app.services import startup
from elexirion_app.services.billing import compaction
from elexirion_app.web import errors, identity, routes
from elexirion_app.web.pages.admin import admin_page
from elexirion_app.web.pages.chat import chat_page
from elexirion_app.web.pages.dashboard import dashboard_page
from elexirion_app.web.pages.editor import editor_page
from elexirion_app.web.pages.login import login_page
from elexirion_app.web.pages.pipelines import pipelines_page
from elexirion_app.web.pages.register import register_page
from elexirion_app.web.pages.runs import run_detail_page, run_trace_page, runs_page
from elexirion_app.web.pages.settings import settings_page
from elexirion_app.web.pages.workspace import workspace_page
from elexirion_app.web.state.admin import AdminState
from elexirion_app.web.state.auth import AuthState
from elexirion_app.web.state.chat import ChatState
from elexirion_app.web.state.dashboard import DashboardState
from elexirion_app.web.state.editor import EditorState
from elexirion_app.web.state.library import LibraryState
from elexirion_app.web.state.runs import RunsState
from elexirion_app.web.state.settings import SettingsState
from elexirion_app.web.state.workspace import WorkspaceState

# The theme is configured in rxconfig.py. The auth routes (which alone set the HttpOnly session
# cookie) are mounted in front of Reflex's backend, the HTTP API (/api/*, /healthz) in front of
# them; /_upload needs a live session bound to the tab and a body under the cap before a byte is
# read; security headers wrap every response.


class _App(rx.App):
    """Reflex's app with ASGI layers outside its own mounts (see ``unroutable_api_paths``):
    ``/api/*`` goes to the API app directly (``api_first``), everything else through Reflex."""

    def __call__(self) -> Any:
        backend = http_api.api_first(super().__call__(), _API, self._set_contexts_internal)
        return security_headers(http_api.unroutable_api_paths(backend))


_API = http_api.build()
app = _App(
    stylesheets=["/styles.css"],
    api_transformer=[
        Starlette(routes=auth_routes.ROUTES + oidc_routes.ROUTES),
        _API,
        guard_uploads,
        security_headers,
    ],
    backend_exception_handler=errors.backend_exception_handler,
)
identity.install(app)
app.register_lifespan_task(startup.on_startup)
app.register_lifespan_task(compaction.compact_forever)  # every worker: safe, see its docstring
app.add_page(
    login_page,
    route=routes.LOGIN,
    title="Log in · ElexirionDSP",
    on_load=AuthState.load_auth_page,
)
app.add_page(
    register_page,
    route=routes.REGISTER,
    title="Register · ElexirionDSP",
    on_load=AuthState.load_auth_page,
)
# Logged-in pages: the login guard first, then the page's own loader (which checks the user
# again itself, as every data handler does).
PRIVATE_PAGES = [
    (chat_page, routes.CHAT, "Chat · ElexirionDSP", ChatState.load),
    (chat_page, routes.INDEX, "ElexirionDSP", ChatState.load),
    (runs_page, routes.RUNS, "Runs · ElexirionDSP", RunsState.load_list),
    (run_detail_page, routes.RUN_VIEW, "Run · ElexirionDSP", RunsState.load_detail),
    (run_trace_page, routes.RUN_TRACE, "Trace · ElexirionDSP", RunsState.load_trace),
    (pipelines_page, routes.PIPELINES, "Pipelines · ElexirionDSP", LibraryState.load),
    (editor_page, routes.PIPELINE_EDIT, "Editor · ElexirionDSP", EditorState.load),
    (workspace_page, routes.WORKSPACE, "Workspace · ElexirionDSP", WorkspaceState.load),
    (settings_page, routes.SETTINGS, "Settings · ElexirionDSP", SettingsState.load),
    (admin_page, routes.ADMIN, "Admin · ElexirionDSP", AdminState.load),
    (dashboard_page, routes.DASHBOARD, "Dashboard · ElexirionDSP", DashboardState.load),
]
for page, route, title, loader in PRIVATE_PAGES:
    app.add_page(page, route=route, title=title, on_load=[AuthState.check_login, loader])
