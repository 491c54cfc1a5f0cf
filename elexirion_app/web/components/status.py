"""Status badges shared by runs and chat progress."""

from __future__ import annotations

import reflex as rx

COLORS = {
    "succeeded": "green",
    "complete": "green",
    "failed": "red",
    "error": "red",
    "running": "blue",
    "queued": "gray",
    "skipped": "gray",
    "interrupted": "orange",
    "stopped": "orange",
}


def status_badge(status: rx.Var[str]) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(
            status,
            *[(k, v) for k, v in COLORS.items()],
            "gray",
        ),
        class_name="status-badge",
        data_status=status,
    )
