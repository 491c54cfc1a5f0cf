"""/dashboard — cost and performance: KPI cards, charts, the costliest runs and conversations,
a CSV of what is shown. Members see their own usage; admins everyone's, or one user's."""

from __future__ import annotations

from typing import Any

import reflex as rx

from elexirion_app.services.billing.dashboard import GROUPINGS, RANGES
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.components.dashboard_charts import (
    cost_by_model_chart,
    kpi_grid,
    latency_chart,
    spend_chart,
    tokens_chart,
)
from elexirion_app.web.components.status import status_badge
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.dashboard import (
    ANY,
    Choice,
    DashboardState,
    TopConversationRow,
    TopRunRow,
)

RANGE_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
RANGE_LABELS |= {"90d": "Last 90 days", "365d": "Last 365 days"}


def _select(name: str, items: list[tuple[str, str]] | Any, *, width: str = "10em") -> rx.Component:
    """A filter select; ``items`` is a static (value, label) list or a state list of names."""
    if isinstance(items, list):
        content = [rx.select.item(label, value=value) for value, label in items]
    else:
        content = [
            rx.select.item("Any " + name, value=ANY),
            rx.foreach(items, lambda v: rx.select.item(v, value=v)),
        ]
    return rx.select.root(
        rx.select.trigger(placeholder=name, width=width, id=f"filter-{name}"),
        rx.select.content(*content),
        value=DashboardState.filters[name],
        on_change=lambda v: DashboardState.set_filter(name, v),
        size="2",
    )


def _user_item(c: Choice) -> rx.Component:
    return rx.select.item(c.label, value=c.value)


def _filters() -> rx.Component:
    return rx.hstack(
        _select("range", [(k, RANGE_LABELS[k]) for k in RANGES], width="11em"),
        _select("grouping", [(g, "By " + g) for g in GROUPINGS], width="8em"),
        _select("model", DashboardState.models, width="14em"),
        _select("provider", DashboardState.providers),
        _select("pipeline", DashboardState.pipelines, width="12em"),
        _select("caller", DashboardState.callers, width="8em"),
        rx.cond(
            DashboardState.is_admin,
            rx.select.root(
                rx.select.trigger(placeholder="user", width="14em", id="filter-user"),
                rx.select.content(rx.foreach(DashboardState.users, _user_item)),
                value=DashboardState.filters["user"],
                on_change=lambda v: DashboardState.set_filter("user", v),
                size="2",
            ),
        ),
        rx.button(
            "Reset", variant="ghost", size="2", on_click=DashboardState.reset_filters, id="reset"
        ),
        rx.spacer(),
        rx.button(
            rx.icon("download", size=16),
            "Export CSV",
            variant="soft",
            size="2",
            on_click=DashboardState.export_csv,
            id="export-csv",
        ),
        wrap="wrap",
        spacing="2",
        align="center",
        width="100%",
        id="dashboard-filters",
    )


def _header() -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.heading("Usage & cost", size="6"),
            rx.hstack(
                rx.badge(DashboardState.scope_label, variant="soft", id="dashboard-scope"),
                rx.text(DashboardState.range_label, size="2", color_scheme="gray"),
                spacing="2",
                align="center",
            ),
            spacing="1",
        ),
        width="100%",
        align="end",
    )


def _th(*names: str) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(n) for n in names]))


def _model_row(m: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(m["model"], weight="medium")),
        rx.table.cell(m["provider"]),
        rx.table.cell(m["calls"]),
        rx.table.cell(m["errors"]),
        rx.table.cell(m["tokens"]),
        rx.table.cell(m["cost_text"]),
        rx.table.cell(rx.text(m["live_text"], color_scheme="gray")),
        rx.table.cell(m["p95"]),
        class_name="model-row",
    )


def _run_row(r: TopRunRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(r.pipeline, href=r.href, class_name="top-run-link")),
        rx.table.cell(status_badge(r.status)),
        rx.table.cell(r.cost),
        rx.table.cell(r.when),
        rx.cond(DashboardState.is_admin, rx.table.cell(r.who)),
        class_name="top-run",
    )


def _conversation_row(c: TopConversationRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.cond(
                c.href != "",
                rx.link(c.title, href=c.href, class_name="top-conversation-link"),
                rx.text(c.title),
            )
        ),
        rx.table.cell(c.calls),
        rx.table.cell(c.cost),
        rx.table.cell(c.when),
        rx.cond(DashboardState.is_admin, rx.table.cell(c.who)),
        class_name="top-conversation",
    )


def _table(title: str, element_id: str, header: rx.Component, body: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(title, size="3", weight="bold"),
            rx.table.root(header, body, width="100%", size="1", variant="ghost"),
            width="100%",
            spacing="2",
        ),
        id=element_id,
        width="100%",
    )


def _tables() -> rx.Component:
    models = _table(
        "By model",
        "table-models",
        _th("Model", "Provider", "Calls", "Errors", "Tokens", "Spend", "Would cost live", "p95"),
        rx.table.body(rx.foreach(DashboardState.by_model, _model_row)),
    )
    runs = _table(
        "Costliest runs started in the range",
        "table-top-runs",
        rx.table.header(
            rx.table.row(
                *[
                    rx.table.column_header_cell(n)
                    for n in ("Pipeline", "Status", "Cost", "Started")
                ],
                rx.cond(DashboardState.is_admin, rx.table.column_header_cell("User")),
            )
        ),
        rx.table.body(rx.foreach(DashboardState.top_runs, _run_row)),
    )
    conversations = _table(
        "Costliest conversations started in the range",
        "table-top-conversations",
        rx.table.header(
            rx.table.row(
                *[
                    rx.table.column_header_cell(n)
                    for n in ("Conversation", "Calls", "Cost", "Last call")
                ],
                rx.cond(DashboardState.is_admin, rx.table.column_header_cell("User")),
            )
        ),
        rx.table.body(rx.foreach(DashboardState.top_conversations, _conversation_row)),
    )
    return rx.vstack(
        models,
        rx.grid(runs, conversations, columns=rx.breakpoints(initial="1", lg="2"), spacing="4"),
        width="100%",
        spacing="4",
    )


@private_page
def dashboard_page() -> rx.Component:
    return rx.vstack(
        _header(),
        _filters(),
        error_callout(DashboardState.error, "dashboard-error"),
        rx.cond(
            DashboardState.loaded,
            rx.vstack(
                kpi_grid(),
                rx.grid(
                    tokens_chart(),
                    cost_by_model_chart(),
                    latency_chart(),
                    spend_chart(),
                    columns=rx.breakpoints(initial="1", lg="2"),
                    spacing="4",
                    width="100%",
                ),
                _tables(),
                rx.text(
                    "Spend is what live provider calls cost (every figure a sum of ledger rows). "
                    "Offline demo calls cost $0; what they would cost live is an estimate, "
                    "shown apart and never added to spend. Latency percentiles are the upper "
                    "bounds of histogram buckets.",
                    size="1",
                    color_scheme="gray",
                ),
                width="100%",
                spacing="4",
            ),
        ),
        padding="2em",
        width="100%",
        max_width="1400px",
        margin_x="auto",
        spacing="4",
        overflow_y="auto",
        height="100%",
    )
