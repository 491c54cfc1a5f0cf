"""The dashboard's charts (``rx.recharts``, animations off so screenshots and tests are stable)
and its KPI cards."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web.state.dashboard import DashboardState, Kpi

TOKEN_SERIES = (
    ("input", "Input", "var(--blue-9)"),
    ("output", "Output", "var(--grass-9)"),
    ("cache_read", "Cache read", "var(--cyan-9)"),
    ("cache_write", "Cache write 5 m", "var(--amber-9)"),
    ("cache_write_1h", "Cache write 1 h", "var(--orange-9)"),
    ("thinking", "Thinking", "var(--purple-9)"),
)
HEIGHT = 260
AXIS = {"font_size": 12, "stroke": "var(--gray-9)"}
# Tick labels (JavaScript, run by recharts in the browser).
COMPACT = "(v) => new Intl.NumberFormat('en', {notation: 'compact'}).format(v)"
DOLLARS = "(v) => '$' + new Intl.NumberFormat('en', {maximumSignificantDigits: 3}).format(v)"
MILLIS = "(v) => v >= 1000 ? (v / 1000) + ' s' : v + ' ms'"


def kpi_card(k: Kpi) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(k.label, size="2", color_scheme="gray", weight="medium"),
            rx.text(k.value, size="5", weight="bold", class_name="kpi-value"),
            rx.text(k.hint, size="1", color_scheme="gray"),
            spacing="1",
        ),
        id=k.id,
        class_name="kpi-card",
        size="2",
    )


def kpi_grid() -> rx.Component:
    return rx.grid(
        rx.foreach(DashboardState.kpis, kpi_card),
        columns=rx.breakpoints(initial="2", sm="3", lg="7"),
        spacing="3",
        width="100%",
        id="dashboard-kpis",
    )


def _panel(title: str, subtitle: str, chart: rx.Component, element_id: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(title, size="3", weight="bold"),
                rx.text(subtitle, size="1", color_scheme="gray"),
                align="baseline",
                spacing="2",
            ),
            rx.cond(
                DashboardState.series.length() == 0,
                rx.center(
                    rx.text("No calls in this range.", color_scheme="gray", size="2"),
                    height=f"{HEIGHT}px",
                    width="100%",
                ),
                chart,
            ),
            width="100%",
            spacing="3",
        ),
        id=element_id,
        width="100%",
    )


def _grid() -> rx.Component:
    return rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)")


def tokens_chart() -> rx.Component:
    chart = rx.recharts.area_chart(
        _grid(),
        *[
            rx.recharts.area(
                data_key=key,
                name=label,
                stack_id="tokens",
                stroke=color,
                fill=color,
                fill_opacity=0.35,
                type_="monotone",
                is_animation_active=False,
            )
            for key, label, color in TOKEN_SERIES
        ],
        rx.recharts.x_axis(data_key="period", **AXIS),
        rx.recharts.y_axis(**AXIS, width=50, tick_formatter=COMPACT),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(icon_size=10),
        data=DashboardState.series,
        width="100%",
        height=HEIGHT,
    )
    return _panel("Tokens by type", "stacked, per period", chart, "chart-tokens")


def cost_by_model_chart() -> rx.Component:
    chart = rx.recharts.bar_chart(
        _grid(),
        rx.recharts.bar(
            data_key="cost",
            name="Spend (USD)",
            fill="var(--accent-9)",
            is_animation_active=False,
            radius=4,
        ),
        rx.recharts.bar(
            data_key="live",
            name="Would cost live (offline, estimate)",
            fill="var(--gray-7)",
            is_animation_active=False,
            radius=4,
        ),
        rx.recharts.x_axis(data_key="model", **AXIS),
        rx.recharts.y_axis(**AXIS, width=60, tick_formatter=DOLLARS),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(icon_size=10),
        data=DashboardState.by_model,
        width="100%",
        height=HEIGHT,
    )
    return _panel("Cost by model", "USD", chart, "chart-cost-model")


def latency_chart() -> rx.Component:
    lines = (
        ("lat_p50", "Latency p50", "var(--blue-9)", ""),
        ("lat_p95", "Latency p95", "var(--blue-11)", "5 3"),
        ("ttft_p50", "TTFT p50", "var(--grass-9)", ""),
        ("ttft_p95", "TTFT p95", "var(--grass-11)", "5 3"),
    )
    chart = rx.recharts.line_chart(
        _grid(),
        *[
            rx.recharts.line(
                data_key=key,
                name=label,
                stroke=color,
                stroke_dasharray=dash,
                stroke_width=2,
                dot=False,
                connect_nulls=True,
                type_="linear",
                is_animation_active=False,
            )
            for key, label, color, dash in lines
        ],
        rx.recharts.x_axis(data_key="period", **AXIS),
        rx.recharts.y_axis(**AXIS, width=60, tick_formatter=MILLIS),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(icon_size=10),
        data=DashboardState.series,
        width="100%",
        height=HEIGHT,
    )
    return _panel("Latency percentiles", "ms, bucket upper bounds", chart, "chart-latency")


def spend_chart() -> rx.Component:
    chart = rx.recharts.bar_chart(
        _grid(),
        rx.recharts.bar(
            data_key="calls",
            name="Calls",
            fill="var(--accent-8)",
            is_animation_active=False,
            radius=3,
        ),
        rx.recharts.bar(
            data_key="errors",
            name="Errors",
            fill="var(--red-9)",
            is_animation_active=False,
            radius=3,
        ),
        rx.recharts.bar(
            data_key="runs",
            name="Runs",
            fill="var(--gray-8)",
            is_animation_active=False,
            radius=3,
        ),
        rx.recharts.x_axis(data_key="period", **AXIS),
        rx.recharts.y_axis(**AXIS, width=50, tick_formatter=COMPACT),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(icon_size=10),
        data=DashboardState.series,
        width="100%",
        height=HEIGHT,
    )
    return _panel("Calls, errors and runs", "per period", chart, "chart-calls")
