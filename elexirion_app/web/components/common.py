"""Small shared components."""

from __future__ import annotations

import reflex as rx
from reflex_base.components.component import field
from reflex_base.vars.base import Var
from reflex_components_core.el.elements.base import BaseHTML


class NativeForm(BaseHTML):
    """A plain HTML ``<form>`` that the browser posts itself (``rx.el.form`` always prevents
    the default submit). Used for the auth routes, which answer with a cookie and a 303."""

    tag = "form"
    action: Var[str] = field(doc="Where the form posts to")
    method: Var[str] = field(doc="HTTP method")


native_form = NativeForm.create


def hydration_marker() -> rx.Component:
    """A hidden ``#hydrated`` element, present once the page is live (browser tests wait on it)."""
    return rx.cond(rx.State.is_hydrated, rx.el.div(id="hydrated", style={"display": "none"}))


def error_callout(message: rx.Var[str], element_id: str) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", id=element_id, width="100%"),
    )


def notice_bar() -> rx.Component:
    """The backend's last-resort error message, if any (``#backend-error``)."""
    from elexirion_app.web.state.notice import NoticeState

    return rx.cond(
        NoticeState.notice != "",
        rx.callout(
            rx.hstack(
                rx.text(NoticeState.notice),
                rx.button("Dismiss", size="1", variant="soft", on_click=NoticeState.dismiss),
                align="center",
                spacing="3",
            ),
            icon="triangle_alert",
            color_scheme="red",
            id="backend-error",
            position="fixed",
            top="0.75em",
            left="50%",
            transform="translateX(-50%)",
            z_index="1000",
        ),
    )
