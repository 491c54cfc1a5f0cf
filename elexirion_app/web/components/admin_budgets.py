"""The "Budgets" panel of /admin: each account's (and everyone's) monthly and per-run caps, this
month's spend against them (a bar: amber at the warn ratio, red when used up), edited in place."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web.state.admin import AdminState, BudgetView


def _money_input(name: str, value: rx.Var[str], label: str) -> rx.Component:
    return rx.input(
        name=name,
        default_value=value,
        placeholder="no cap",
        max_length=20,
        size="1",
        width="7em",
        aria_label=label,
    )


def _caps(b: BudgetView) -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.el.input(type="hidden", name="subject", value=b.key),
            rx.text("$", size="1"),
            _money_input("monthly_usd", b.monthly, "Monthly cap (USD)"),
            rx.text("/ month · $", size="1", white_space="nowrap"),
            _money_input("per_run_usd", b.per_run, "Per-run cap (USD)"),
            rx.text("/ run", size="1"),
            rx.button("Save", size="1", variant="soft", type="submit", class_name="budget-save"),
            spacing="1",
            align="center",
        ),
        on_submit=AdminState.save_budget,
        reset_on_submit=False,
        class_name="budget-caps",
    )


def _used(b: BudgetView) -> rx.Component:
    return rx.vstack(
        rx.text(b.spent, size="1", white_space="nowrap"),
        rx.cond(
            b.used != "",
            rx.hstack(
                rx.progress(
                    value=b.percent,
                    max=100,
                    width="8em",
                    color_scheme=rx.match(b.level, ("exceeded", "red"), ("warn", "amber"), "grass"),
                ),
                rx.text(b.used, size="1"),
                align="center",
                spacing="2",
            ),
        ),
        spacing="1",
    )


def _row(b: BudgetView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(b.who, weight=rx.cond(b.key == "global", "bold", "regular"))),
        rx.table.cell(_caps(b)),
        rx.table.cell(_used(b)),
        class_name="budget-row",
        data_budget=b.key,
        data_level=b.level,
    )


def budgets_panel() -> rx.Component:
    return rx.vstack(
        rx.heading("Budgets", size="4"),
        rx.text(
            "Spend caps in USD, enforced before every live model call (a call that could cross "
            "a cap is refused with the numbers). The global monthly cap counts everyone "
            "together; its per-run cap applies to accounts without their own. Empty: no cap. "
            "Spend is this calendar month (UTC), booked calls plus calls in flight.",
            size="2",
            color_scheme="gray",
        ),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[rx.table.column_header_cell(h) for h in ("Account", "Caps", "This month")]
                )
            ),
            rx.table.body(rx.foreach(AdminState.budgets, _row)),
            width="100%",
            id="admin-budgets",
        ),
        width="100%",
        spacing="3",
    )
