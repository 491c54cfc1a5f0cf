"""The Reflex app: registers pages (and, later, the API). Nothing else lives here."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.pages.chat import chat_page
from elexirion_app.web.pages.login import login_page
from elexirion_app.web.pages.register import register_page
from elexirion_app.web.state.auth import AuthState
from elexirion_app.web.state.chat import ChatState

app = rx.App(theme=rx.theme(accent_color="indigo", radius="medium"))
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
