"""The dashboard's charts (``rx.recharts``, animations off so screenshots and tests are stable)
and its KPI cards."""

from __future__ import annotations

from typing import Any

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
DOLLARS = "(v) => '$' + new Intl.NumberFormat('en', {maximumSignificantDigits: 2}).format(v)"
MILLIS = "(v) => v >= 1000 ? (v / 1000) + ' s' : v + ' ms'"
# Wide enough for the longest tick of each ("$0.00055", "800 ms"): a narrower axis cut their
# first characters off ("B00 ms", "0.0195" without its "$").
MONEY_AXIS, TIME_AXIS, COUNT_AXIS = 86, 72, 50
# Bar charts of a 30-day range: 31 periods × 2-3 bars; thinner gaps keep the bars visible.
BAR_GAPS = {"bar_gap": 1, "bar_category_gap": "8%"}


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


def _chart(
    make: Any,
    series: list[rx.Component],
    *,
    x: str,
    y_width: int,
    ticks: str,
    data: Any,
    **chart: Any,
) -> rx.Component:
    """A recharts cartesian chart with our grid, axes, tooltip and legend."""
    return make(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", stroke="var(--gray-a5)"),
        *series,
        rx.recharts.x_axis(data_key=x, **AXIS),
        rx.recharts.y_axis(**AXIS, width=y_width, tick_formatter=ticks),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(icon_size=10),
        data=data,
        width="100%",
        height=HEIGHT,
        **chart,
    )


def _bars(*specs: tuple[str, str, str], radius: int) -> list[rx.Component]:
    return [
        rx.recharts.bar(
            data_key=key, name=name, fill=fill, is_animation_active=False, radius=radius
        )
        for key, name, fill in specs
    ]


def tokens_chart() -> rx.Component:
    areas = [
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
    ]
    chart = _chart(
        rx.recharts.area_chart, areas, x="period", y_width=COUNT_AXIS, ticks=COMPACT,
        data=DashboardState.series,
    )  # fmt: skip
    return _panel("Tokens by type", "stacked, per period", chart, "chart-tokens")


def cost_by_model_chart() -> rx.Component:
    bars = _bars(
        ("cost", "Spend (USD)", "var(--accent-9)"),
        ("live", "Would cost live (offline, estimate)", "var(--gray-7)"),
        radius=4,
    )
    chart = _chart(
        rx.recharts.bar_chart, bars, x="model", y_width=MONEY_AXIS, ticks=DOLLARS,
        data=DashboardState.by_model,
    )  # fmt: skip
    return _panel("Cost by model", "USD", chart, "chart-cost-model")


def latency_chart() -> rx.Component:
    specs = (
        ("lat_p50", "Latency p50", "var(--blue-9)", ""),
        ("lat_p95", "Latency p95", "var(--blue-11)", "5 3"),
        ("ttft_p50", "TTFT p50", "var(--grass-9)", ""),
        ("ttft_p95", "TTFT p95", "var(--grass-11)", "5 3"),
    )
    lines = [
        rx.recharts.line(
            data_key=key,
            name=label,
            stroke=color,
            stroke_dasharray=dash,
            stroke_width=2,
            dot={"r": 2, "fill": color},  # a period alone (no line to draw) still shows
            connect_nulls=True,
            type_="linear",
            is_animation_active=False,
        )
        for key, label, color, dash in specs
    ]
    chart = _chart(
        rx.recharts.line_chart, lines, x="period", y_width=TIME_AXIS, ticks=MILLIS,
        data=DashboardState.series,
    )  # fmt: skip
    return _panel("Latency percentiles", "ms, bucket upper bounds", chart, "chart-latency")


def spend_chart() -> rx.Component:
    bars = _bars(
        ("calls", "Calls", "var(--accent-8)"),
        ("errors", "Errors", "var(--red-9)"),
        ("runs", "Runs", "var(--gray-8)"),
        radius=3,
    )
    chart = _chart(
        rx.recharts.bar_chart, bars, x="period", y_width=COUNT_AXIS, ticks=COMPACT,
        data=DashboardState.series, **BAR_GAPS,
    )  # fmt: skip
    return _panel("Calls, errors and runs", "per period", chart, "chart-calls")
