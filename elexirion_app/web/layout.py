"""The page layout: navbar + content, and the login guard as ``on_load``."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.components.common import hydration_marker, native_form, notice_bar
from elexirion_app.web.state.auth import AuthState


def navbar() -> rx.Component:
    return rx.hstack(
        rx.link(rx.heading("ElexirionDSP", size="5"), href=routes.CHAT, underline="none"),
        rx.badge("beta", variant="soft"),
        rx.spacer(),
        rx.link("Chat", href=routes.CHAT, id="nav-chat"),
        rx.link("Pipelines", href=routes.PIPELINES, id="nav-pipelines"),
        rx.link("Runs", href=routes.RUNS, id="nav-runs"),
        rx.link("Dashboard", href=routes.DASHBOARD, id="nav-dashboard"),
        rx.link("Workspace", href=routes.WORKSPACE, id="nav-workspace"),
        rx.link("Settings", href=routes.SETTINGS, id="nav-settings"),
        rx.cond(AuthState.is_admin, rx.link("Admin", href=routes.ADMIN, id="nav-admin")),
        rx.text(AuthState.user_email, size="2", color_scheme="gray", id="current-user"),
        rx.cond(AuthState.is_admin, rx.badge("admin", color_scheme="purple")),
        native_form(
            rx.button("Log out", id="logout", type="submit", variant="soft", size="2"),
            action=routes.AUTH_LOGOUT,
            method="post",
        ),
        align="center",
        spacing="4",
        padding_x="1.5em",
        padding_y="0.75em",
        border_bottom="1px solid var(--gray-a5)",
        width="100%",
    )


def private_page(content: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
    """Wrap a logged-in page with the navbar (the guard is the page's ``on_load``)."""

    def wrapped() -> rx.Component:
        return rx.box(
            hydration_marker(),
            notice_bar(),
            navbar(),
            rx.box(content(), flex="1", min_height="0", width="100%"),
            display="flex",
            flex_direction="column",
            height="100vh",
        )

    wrapped.__name__ = content.__name__
    return wrapped


def public_page(content: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
    def wrapped() -> rx.Component:
        return rx.center(
            hydration_marker(), notice_bar(), content(), min_height="100vh", padding="2em"
        )

    wrapped.__name__ = content.__name__
    return wrapped
