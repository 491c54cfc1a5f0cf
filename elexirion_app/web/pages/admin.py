"""/admin — accounts, roles, per-user limits, budgets and the audit log (admins only: every handler
checks the role in the database; anyone else sees only the refusal)."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web.components.admin_budgets import budgets_panel
from elexirion_app.web.components.admin_panels import audit_panel, users_panel
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.admin import AdminState


@private_page
def admin_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Admin", size="6"),
        rx.cond(
            AdminState.message != "",
            rx.callout(AdminState.message, color_scheme="green", id="admin-message"),
        ),
        error_callout(AdminState.error, "admin-error"),
        rx.cond(
            AdminState.allowed,
            rx.vstack(
                users_panel(),
                rx.divider(),
                budgets_panel(),
                rx.divider(),
                audit_panel(),
                width="100%",
                spacing="5",
            ),
        ),
        padding="2em",
        width="100%",
        max_width="1400px",
        margin_x="auto",
        spacing="4",
    )
