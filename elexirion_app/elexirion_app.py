"""The Reflex app: registers pages (and, later, the API). Nothing else lives here."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.pages.chat import chat_page
from elexirion_app.web.pages.login import login_page
from elexirion_app.web.pages.register import register_page
from elexirion_app.web.pages.runs import run_detail_page, runs_page
from elexirion_app.web.pages.workspace import workspace_page
from elexirion_app.web.state.auth import AuthState
from elexirion_app.web.state.chat import ChatState
from elexirion_app.web.state.runs import RunsState
from elexirion_app.web.state.workspace import WorkspaceState

app = rx.App(stylesheets=["/styles.css"])  # the theme is configured in rxconfig.py
app.add_page(
    login_page,
    route=routes.LOGIN,
    title="Log in · ElexirionDSP",
    on_load=AuthState.redirect_if_logged_in,
)
app.add_page(
    register_page,
    route=routes.REGISTER,
    title="Register · ElexirionDSP",
    on_load=AuthState.redirect_if_logged_in,
)
app.add_page(
    chat_page,
    route=routes.CHAT,
    title="Chat · ElexirionDSP",
    on_load=[AuthState.check_login, ChatState.load],
)
app.add_page(
    chat_page,
    route=routes.INDEX,
    title="ElexirionDSP",
    on_load=[AuthState.check_login, ChatState.load],
)
app.add_page(
    runs_page,
    route=routes.RUNS,
    title="Runs · ElexirionDSP",
    on_load=[AuthState.check_login, RunsState.load_list],
)
app.add_page(
    run_detail_page,
    route=routes.RUN_VIEW,
    title="Run · ElexirionDSP",
    on_load=[AuthState.check_login, RunsState.load_detail],
)
app.add_page(
    workspace_page,
    route=routes.WORKSPACE,
    title="Workspace · ElexirionDSP",
    on_load=[AuthState.check_login, WorkspaceState.load],
)
