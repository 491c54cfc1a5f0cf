"""The card shared by the login and register pages (ids are the automation contract)."""

from __future__ import annotations

from collections.abc import Sequence

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.components.common import error_callout, native_form
from elexirion_app.web.state.auth import AuthState


def sso_links(providers: Sequence[tuple[str, str]]) -> list[rx.Component]:
    """A divider and a full-page link per provider (``#oidc-<name>``): the login start is a
    server route, not a page, so the browser must load it as a document."""
    if not providers:
        return []
    links = [
        rx.button(
            rx.el.a(
                f"Continue with {display}",
                href=routes.oidc_login(name),
                id=f"oidc-{name}",
                reload_document=True,  # React Router would route it client-side (a 404)
            ),
            as_child=True,
            variant="outline",
            width="100%",
        )
        for name, display in providers
    ]
    divider = rx.hstack(
        rx.separator(size="4"),
        rx.text("or", size="1", color_scheme="gray"),
        rx.separator(size="4"),
        align="center",
        width="100%",
    )
    return [divider, *links]


def auth_card(
    *,
    prefix: str,
    title: str,
    subtitle: str,
    submit: str,
    password_label: str,
    password_autocomplete: str,
    footer: rx.Component,
    action: str,
    providers: Sequence[tuple[str, str]] = (),
) -> rx.Component:
    """A form the browser posts to ``action`` (a server route that sets the HttpOnly cookie),
    then one "Continue with ..." link per single sign-on provider (``(name, display name)``)."""
    intro = [rx.text(subtitle, size="2", color_scheme="gray")] if subtitle else []
    return rx.card(
        native_form(
            rx.vstack(
                rx.heading(title, size="6"),
                *intro,
                error_callout(AuthState.auth_error, f"{prefix}-error"),
                rx.text("Email", size="2", weight="medium"),
                rx.input(
                    name="email",
                    id=f"{prefix}-email",
                    type="email",
                    required=True,
                    width="100%",
                    auto_complete="username",
                ),
                rx.text(password_label, size="2", weight="medium"),
                rx.input(
                    name="password",
                    id=f"{prefix}-password",
                    type="password",
                    required=True,
                    width="100%",
                    auto_complete=password_autocomplete,
                ),
                rx.button(submit, id=f"{prefix}-submit", type="submit", width="100%"),
                *sso_links(providers),
                footer,
                spacing="3",
                width="100%",
            ),
            action=action,
            method="post",
        ),
        width="min(420px, 100%)",
        size="4",
    )
