"""/login"""

from __future__ import annotations

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import public_page
from elexirion_app.web.state.auth import AuthState


@public_page
def login_page() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Log in to ElexirionDSP", size="6"),
                error_callout(AuthState.auth_error, "login-error"),
                rx.text("Email", size="2", weight="medium"),
                rx.input(
                    name="email",
                    id="login-email",
                    type="email",
                    required=True,
                    width="100%",
                    auto_complete="username",
                ),
                rx.text("Password", size="2", weight="medium"),
                rx.input(
                    name="password",
                    id="login-password",
                    type="password",
                    required=True,
                    width="100%",
                    auto_complete="current-password",
                ),
                rx.button("Log in", id="login-submit", type="submit", width="100%"),
                rx.text("No account? ", rx.link("Create one", href=routes.REGISTER), size="2"),
                spacing="3",
                width="100%",
            ),
            on_submit=AuthState.login,
        ),
        width="min(420px, 100%)",
        size="4",
    )
