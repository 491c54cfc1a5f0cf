"""/register"""

from __future__ import annotations

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import public_page
from elexirion_app.web.state.auth import AuthState


@public_page
def register_page() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Create your account", size="6"),
                rx.text(
                    "The first account on a new server becomes its admin.",
                    size="2",
                    color_scheme="gray",
                ),
                error_callout(AuthState.auth_error, "register-error"),
                rx.text("Email", size="2", weight="medium"),
                rx.input(
                    name="email",
                    id="register-email",
                    type="email",
                    required=True,
                    width="100%",
                    auto_complete="username",
                ),
                rx.text("Password (8 characters or more)", size="2", weight="medium"),
                rx.input(
                    name="password",
                    id="register-password",
                    type="password",
                    required=True,
                    width="100%",
                    auto_complete="new-password",
                ),
                rx.button("Create account", id="register-submit", type="submit", width="100%"),
                rx.text("Already registered? ", rx.link("Log in", href=routes.LOGIN), size="2"),
                spacing="3",
                width="100%",
            ),
            on_submit=AuthState.register,
        ),
        width="min(420px, 100%)",
        size="4",
    )
