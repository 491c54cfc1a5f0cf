"""The two panels of /admin: the accounts table and the audit log with its filters."""

from __future__ import annotations

import reflex as rx

from elexirion_app.services.accounts import rate_limits
from elexirion_app.web.state.admin import ANY, AdminState, EventRow, UserRow


def _role(u: UserRow) -> rx.Component:
    return rx.hstack(
        rx.cond(
            u.is_admin,
            rx.badge("admin", color_scheme="purple"),
            rx.badge("member", color_scheme="gray", variant="soft"),
        ),
        rx.button(
            rx.cond(u.is_admin, "Make member", "Make admin"),
            size="1",
            variant="ghost",
            class_name="user-role",
            on_click=AdminState.set_role(u.id, ~u.is_admin),
        ),
        align="center",
        spacing="2",
    )


def _disable(u: UserRow) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(
                "Disable", size="1", variant="soft", color_scheme="red", class_name="user-disable"
            )
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Disable " + u.email + "?"),
            rx.alert_dialog.description(
                "They are logged out everywhere at once and their API keys are refused until "
                "you enable the account again."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft")),
                rx.alert_dialog.action(
                    rx.button(
                        "Disable",
                        color_scheme="red",
                        class_name="user-disable-confirm",
                        on_click=AdminState.set_active(u.id, False),
                    )
                ),
                justify="end",
                spacing="2",
            ),
        ),
    )


def _status(u: UserRow) -> rx.Component:
    return rx.hstack(
        rx.cond(
            u.active,
            rx.badge("active", color_scheme="green", variant="soft"),
            rx.badge("disabled", color_scheme="red"),
        ),
        rx.cond(
            u.is_me,
            rx.badge("you", variant="outline"),
            rx.cond(
                u.active,
                _disable(u),
                rx.button(
                    "Enable",
                    size="1",
                    variant="soft",
                    class_name="user-enable",
                    on_click=AdminState.set_active(u.id, True),
                ),
            ),
        ),
        align="center",
        spacing="2",
        class_name="user-status",
    )


def _limits(u: UserRow) -> rx.Component:
    size = rate_limits.MAX_RULE_CHARS
    return rx.form(
        rx.hstack(
            rx.el.input(type="hidden", name="user_id", value=u.id.to_string()),
            rx.input(
                name="chat_limit",
                default_value=u.chat_limit,
                placeholder=AdminState.chat_default,
                max_length=size,
                size="1",
                width="12.5em",
                aria_label="Chat limit",
            ),
            rx.input(
                name="api_limit",
                default_value=u.api_limit,
                placeholder=AdminState.api_default,
                max_length=size,
                size="1",
                width="12.5em",
                aria_label="API limit",
            ),
            rx.button("Save", size="1", variant="soft", type="submit", class_name="limits-save"),
            spacing="1",
            align="center",
        ),
        on_submit=AdminState.save_limits,
        class_name="user-limits",
    )


def _user(u: UserRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(u.email, weight="medium"),
                rx.text(u.name, size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(_role(u)),
        rx.table.cell(_status(u)),
        rx.table.cell(_limits(u)),
        rx.table.cell(u.live_keys),
        rx.table.cell(rx.text(u.last_login, size="1", white_space="nowrap")),
        rx.table.cell(rx.text(u.created, size="1", white_space="nowrap")),
        class_name="user-row",
        data_user_email=u.email,
    )


def users_panel() -> rx.Component:
    return rx.vstack(
        rx.heading("Accounts", size="4"),
        rx.text(
            "Limits are per user: chat messages and API calls, like '30/minute;500/day'. "
            "Empty: the server's default (shown in grey).",
            size="2",
            color_scheme="gray",
        ),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in (
                            "Account",
                            "Role",
                            "Status",
                            "Chat limit · API limit",
                            "Keys",
                            "Last login",
                            "Created",
                        )
                    ]
                )
            ),
            rx.table.body(rx.foreach(AdminState.users, _user)),
            width="100%",
            id="admin-users",
        ),
        width="100%",
        spacing="3",
    )


def _choice(name: str, items: rx.Var[list[str]], label: str) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label=label, width="11em"),
        rx.select.content(
            rx.select.item("any " + label, value=ANY),
            rx.foreach(items, lambda v: rx.select.item(v, value=v)),
        ),
        name=name,
        default_value=ANY,
        size="2",
    )


def _filters() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.box(_choice("action", AdminState.actions, "action"), id="audit-action"),
            rx.box(_choice("outcome", AdminState.outcomes, "outcome"), id="audit-outcome"),
            rx.input(name="email", placeholder="user email", id="audit-email", width="14em"),
            rx.input(name="address", placeholder="address", id="audit-address", width="9em"),
            rx.text("from", size="2", color_scheme="gray"),
            rx.input(name="since", type="date", id="audit-since"),
            rx.text("to", size="2", color_scheme="gray"),
            rx.input(name="until", type="date", id="audit-until"),
            rx.button("Filter", type="submit", id="audit-filter"),
            align="center",
            spacing="2",
            wrap="wrap",
        ),
        on_submit=AdminState.filter_audit,
    )


OUTCOME_COLORS = {"ok": "green", "failed": "red", "locked": "orange", "refused": "amber"}


def _event(e: EventRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(e.when, size="1")),
        rx.table.cell(rx.code(e.action)),
        rx.table.cell(
            rx.match(
                e.outcome,
                *[
                    (k, rx.badge(k, color_scheme=c, variant="soft"))
                    for k, c in OUTCOME_COLORS.items()
                ],
                rx.badge(e.outcome),
            )
        ),
        rx.table.cell(rx.text(e.actor, size="2")),
        rx.table.cell(rx.text(e.target, size="2")),
        rx.table.cell(rx.text(e.address, size="1")),
        rx.table.cell(rx.text(e.detail, size="1", color_scheme="gray")),
        class_name="audit-row",
        data_action=e.action,
        data_outcome=e.outcome,
    )


def audit_panel() -> rx.Component:
    return rx.vstack(
        rx.heading("Audit log", size="4"),
        _filters(),
        rx.cond(
            AdminState.filter_summary != "",
            rx.text("Showing: " + AdminState.filter_summary, size="2", id="audit-summary"),
        ),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in ("When (UTC)", "Action", "Outcome", "By", "On", "From", "Detail")
                    ]
                )
            ),
            rx.table.body(rx.foreach(AdminState.events, _event)),
            width="100%",
            id="audit-log",
            size="1",
        ),
        rx.cond(
            AdminState.events.length() == 0,
            rx.text("No events match.", size="2", color_scheme="gray", id="audit-empty"),
        ),
        rx.cond(
            AdminState.has_older,
            rx.button("Older", variant="soft", on_click=AdminState.older, id="audit-older"),
        ),
        width="100%",
        spacing="3",
    )
