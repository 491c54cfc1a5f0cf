"""/login"""

from __future__ import annotations

import reflex as rx

from elexirion_app.config import get_settings
from elexirion_app.web import routes
from elexirion_app.web.components.auth_form import auth_card
from elexirion_app.web.layout import public_page


@public_page
def login_page() -> rx.Component:
    # The single sign-on providers are configuration, read when the page is built.
    providers = [(p.name, p.display_name) for p in get_settings().oidc_providers]
    return auth_card(
        prefix="login",
        title="Log in to ElexirionDSP",
        subtitle="",
        submit="Log in",
        password_label="Password",
        password_autocomplete="current-password",
        footer=rx.text("No account? ", rx.link("Create one", href=routes.REGISTER), size="2"),
        action=routes.AUTH_LOGIN,
        providers=providers,
    )
