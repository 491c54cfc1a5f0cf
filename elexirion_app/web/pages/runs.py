"""/runs and /runs/view?id=…"""

from __future__ import annotations

from typing import Any

import reflex as rx

from elexirion_app.web import routes
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.components.status import status_badge
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.runs import RunRow, RunsState, StepRow


def _run_row(r: RunRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(r.pipeline, href=routes.RUN_VIEW + "?id=" + r.id)),
        rx.table.cell(status_badge(r.status)),
        rx.table.cell(r.tokens),
        rx.table.cell(r.cost_usd),
        rx.table.cell(r.duration),
        rx.table.cell(r.created_at),
        class_name="run-row",
    )


@private_page
def runs_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Runs", size="6"),
        rx.cond(
            RunsState.runs.length() == 0,
            rx.text(
                "No runs yet. Ask the chat to analyse your code, or run a pipeline.",
                color_scheme="gray",
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in (
                                "Pipeline",
                                "Status",
                                "Tokens",
                                "Cost",
                                "Duration",
                                "Started (UTC)",
                            )
                        ]
                    )
                ),
                rx.table.body(rx.foreach(RunsState.runs, _run_row)),
                width="100%",
            ),
        ),
        padding="2em",
        width="100%",
        max_width="1200px",
        margin_x="auto",
    )


def _step(s: StepRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(s.name, size="3"),
                rx.badge(s.step_type, variant="outline"),
                status_badge(s.status),
                rx.spacer(),
                rx.text(s.model, size="2", color_scheme="gray"),
                rx.text(s.tokens, size="2"),
                rx.text(s.cost_usd, size="2"),
                rx.text(s.latency, size="2", color_scheme="gray"),
                width="100%",
                align="center",
                wrap="wrap",
            ),
            rx.cond(s.error != "", rx.callout(s.error, color_scheme="red", size="1")),
            rx.cond(
                s.text != "",
                rx.box(
                    rx.markdown(s.text, use_raw=False),
                    max_height="320px",
                    overflow_y="auto",
                    width="100%",
                ),
            ),
            rx.cond(
                s.result_json != "",
                rx.el.details(
                    rx.el.summary("Result JSON"),
                    rx.code_block(s.result_json, language="json", wrap_long_lines=True),
                ),
            ),
            width="100%",
        ),
        width="100%",
        class_name="step-card",
        data_step=s.name,
    )


@private_page
def run_detail_page() -> rx.Component:
    return rx.vstack(
        rx.link("← All runs", href=routes.RUNS),
        error_callout(RunsState.error, "run-error"),
        rx.cond(
            RunsState.run.id != "",
            rx.vstack(
                rx.hstack(
                    rx.heading(RunsState.run.pipeline, size="6"),
                    status_badge(RunsState.run.status),
                    rx.link(
                        "Trace →",
                        href=routes.RUN_TRACE + "?id=" + RunsState.run.id,
                        id="open-trace",
                    ),
                    align="center",
                ),
                rx.hstack(
                    rx.text("Run ", rx.code(RunsState.run.id)),
                    rx.text("Cost ", rx.text.strong(RunsState.run.cost_usd)),
                    rx.text("Tokens ", RunsState.run.tokens),
                    rx.text("Duration ", RunsState.run.duration),
                    rx.text(RunsState.calls),
                    spacing="5",
                    wrap="wrap",
                    id="run-summary",
                ),
                rx.cond(
                    RunsState.run_error != "", rx.callout(RunsState.run_error, color_scheme="red")
                ),
                rx.foreach(RunsState.steps, _step),
                width="100%",
                spacing="3",
            ),
        ),
        padding="2em",
        width="100%",
        max_width="1200px",
        margin_x="auto",
        spacing="3",
    )


def _lane(i: dict[str, Any]) -> rx.Component:
    is_step = i["kind"] == "step"
    return rx.hstack(
        rx.box(
            rx.text(i["label"].to(str), size="1", weight=rx.cond(is_step, "bold", "regular")),
            width="16em",
            min_width="16em",
            padding_left=rx.cond(is_step, "0", "1.2em"),
            trim="both",
        ),
        rx.box(
            rx.tooltip(
                rx.box(
                    position="absolute",
                    left=i["left"].to(str),
                    width=i["width"].to(str),
                    height="100%",
                    border_radius="3px",
                    background=rx.match(
                        i["status"].to(str),
                        ("failed", "var(--red-9)"),
                        ("error", "var(--red-9)"),
                        ("skipped", "var(--gray-7)"),
                        ("ok", "var(--violet-9)"),
                        "var(--accent-9)",
                    ),
                ),
                content=i["detail"].to(str),
            ),
            position="relative",
            flex="1",
            height=rx.cond(is_step, "14px", "9px"),
            background="var(--gray-a3)",
            border_radius="3px",
        ),
        rx.text(i["span"].to(str), size="1", color_scheme="gray", width="11em"),
        rx.cond(
            i["error"].to(str) != "",
            rx.tooltip(rx.badge("error", color_scheme="red", size="1"), content=i["error"].to(str)),
        ),
        width="100%",
        align="center",
        class_name="trace-item",
        data_kind=i["kind"],
        data_status=i["status"],
    )


@private_page
def run_trace_page() -> rx.Component:
    return rx.vstack(
        rx.link("← The run", href=routes.RUN_VIEW + "?id=" + RunsState.run.id),
        error_callout(RunsState.error, "run-error"),
        rx.cond(
            RunsState.run.id != "",
            rx.vstack(
                rx.hstack(
                    rx.heading("Trace · ", RunsState.run.pipeline, size="6"),
                    status_badge(RunsState.run.status),
                    rx.text(RunsState.trace_total, color_scheme="gray"),
                    align="center",
                ),
                rx.text(
                    "Steps (bold) and each LLM attempt under them, retries and failures "
                    "included; hover a bar for model, tokens, cost and latency.",
                    size="2",
                    color_scheme="gray",
                ),
                rx.vstack(rx.foreach(RunsState.trace_items, _lane), width="100%", id="trace"),
                width="100%",
                spacing="3",
            ),
        ),
        padding="2em",
        width="100%",
        max_width="1400px",
        margin_x="auto",
        spacing="3",
    )
