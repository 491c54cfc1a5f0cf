"""Small shared components."""

from __future__ import annotations

import reflex as rx


def hydration_marker() -> rx.Component:
    """A hidden ``#hydrated`` element, present once the page is live (browser tests wait on it)."""
    return rx.cond(rx.State.is_hydrated, rx.el.div(id="hydrated", style={"display": "none"}))


def error_callout(message: rx.Var[str], element_id: str) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", id=element_id, width="100%"),
    )
