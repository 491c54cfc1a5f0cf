"""/register"""

from __future__ import annotations

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.components.auth_form import auth_card
from elexirion_app.web.layout import public_page


@public_page
def register_page() -> rx.Component:
    return auth_card(
        prefix="register",
        title="Create your account",
        subtitle="The first account on a new server becomes its admin.",
        submit="Create account",
        password_label="Password (8 characters or more)",
        password_autocomplete="new-password",
        footer=rx.text("Already registered? ", rx.link("Log in", href=routes.LOGIN), size="2"),
        action=routes.AUTH_REGISTER,
    )
