"""The card shared by the login and register pages (ids are the automation contract)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from elexirion_app.web.components.common import error_callout
from elexirion_app.web.state.auth import AuthState


def auth_card(
    *,
    prefix: str,
    title: str,
    subtitle: str,
    submit: str,
    password_label: str,
    password_autocomplete: str,
    footer: rx.Component,
    on_submit: Any,
) -> rx.Component:
    intro = [rx.text(subtitle, size="2", color_scheme="gray")] if subtitle else []
    return rx.card(
        rx.form(
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
                footer,
                spacing="3",
                width="100%",
            ),
            on_submit=on_submit,
        ),
        width="min(420px, 100%)",
        size="4",
    )
