"""The editor's side panels: palette, inspector, problems, versions, run form, step output."""

from __future__ import annotations

from typing import Any

import reflex as rx

from elexirion_app.pipelines.validate import STEP_TYPES
from elexirion_app.web.components.status import status_badge
from elexirion_app.web.state.editor import EditorState
from elexirion_app.web.state.editor_run import EditorRunState
from elexirion_app.web.state.editor_versions import VersionsState

# Lucide icons (as the graph's nodes show them; this machine's browser has no emoji font).
PALETTE_ICONS = {
    "claude": "bot",
    "gemini": "sparkles",
    "parallel_claude": "columns_3",
    "gemini_instructor": "puzzle",
    "claude_smart": "brain",
    "claude_session": "messages_square",
    "claude_extract": "magnet",
    "claude_batch": "layers",
    "claude_robust": "shield_check",
    "for_loop": "repeat",
    "while_loop": "refresh_cw",
    "data_transform": "shuffle",
    "file_ops": "folder",
    "pipeline": "package",
    "set_variable": "variable",
}


def section(title: str, *children: rx.Component, **props: Any) -> rx.Component:
    return rx.vstack(
        rx.text(title, weight="bold", size="2", color_scheme="gray"),
        *children,
        spacing="2",
        width="100%",
        padding="0.75em",
        border_bottom="1px solid var(--gray-a4)",
        **props,
    )


def palette() -> rx.Component:
    return rx.vstack(
        rx.text("Add a step", weight="bold", size="1", color_scheme="gray"),
        *[
            rx.button(
                rx.icon(PALETTE_ICONS.get(t, "circle"), size=14),
                t,
                size="1",
                variant="soft",
                width="100%",
                justify="start",
                data_palette_type=t,
                on_click=EditorState.add_step(t),
                disabled=EditorState.shipped,
            )
            for t in STEP_TYPES
        ],
        spacing="1",
        padding="0.5em",
        width="11em",
        overflow_y="auto",
        border_right="1px solid var(--gray-a4)",
        id="palette",
    )


def _problem(p: dict[str, Any]) -> rx.Component:
    return rx.hstack(
        rx.badge(
            rx.cond(p["line"].to(int) > 0, "L" + p["line"].to_string(), "—"),
            color_scheme=rx.cond(p["severity"] == "error", "red", "amber"),
            variant="soft",
        ),
        rx.vstack(
            rx.text(
                rx.cond(p["path"] != "", p["path"].to(str) + ": ", ""),
                p["message"].to(str),
                size="1",
            ),
            rx.cond(p["hint"] != "", rx.text(p["hint"].to(str), size="1", color_scheme="gray")),
            spacing="0",
        ),
        data_problem_line=p["line"],
        data_severity=p["severity"],
        class_name="problem",
        align="start",
        spacing="2",
    )


def problems() -> rx.Component:
    return rx.box(
        rx.cond(
            EditorState.problems.length() == 0,
            rx.text("No problems.", size="1", color_scheme="green", id="no-problems"),
            rx.vstack(rx.foreach(EditorState.problems, _problem), spacing="1"),
        ),
        id="problems",
        max_height="10em",
        overflow_y="auto",
        padding="0.5em",
        border_top="1px solid var(--gray-a4)",
        width="100%",
    )


def _field(f: dict[str, Any]) -> rx.Component:
    key = f["key"].to(str)
    label = rx.tooltip(rx.text(f["label"].to(str), size="1"), content=f["description"].to(str))
    control = rx.match(
        f["kind"],
        (
            "bool",
            rx.select(
                ["true", "false"],
                value=f["value"].to(str),
                on_change=lambda v: EditorState.set_field(key, v),
                size="1",
            ),
        ),
        (
            "enum",
            rx.select(
                f["options"].to(list[str]),
                value=f["value"].to(str),
                on_change=lambda v: EditorState.set_field(key, v),
                size="1",
            ),
        ),
        (
            "textarea",
            rx.text_area(
                default_value=f["value"].to(str),
                on_blur=lambda v: EditorState.set_field(key, v),
                size="1",
                rows="3",
            ),
        ),
        (
            "list",
            rx.text_area(
                default_value=f["value"].to(str),
                on_blur=lambda v: EditorState.set_field(key, v),
                size="1",
                rows="3",
                font_family="monospace",
            ),
        ),
        (
            "object",
            rx.text_area(
                default_value=f["value"].to(str),
                on_blur=lambda v: EditorState.set_field(key, v),
                size="1",
                rows="3",
                font_family="monospace",
            ),
        ),
        rx.input(
            default_value=f["value"].to(str),
            on_blur=lambda v: EditorState.set_field(key, v),
            size="1",
        ),
    )
    return rx.vstack(label, control, spacing="0", width="100%", data_field=key)


def _part(p: dict[str, Any]) -> rx.Component:
    index = p["index"].to(int)
    return rx.vstack(
        rx.hstack(
            rx.badge(p["type"].to(str), variant="soft", size="1"),
            rx.spacer(),
            rx.icon_button(
                rx.icon("x", size=12),
                size="1",
                variant="ghost",
                on_click=EditorState.remove_part(index),
            ),
            width="100%",
        ),
        rx.text_area(
            default_value=p["value"].to(str),
            on_blur=lambda v: EditorState.set_part(index, v),
            size="1",
            rows="3",
        ),
        spacing="1",
        width="100%",
        class_name="prompt-part",
    )


def inspector() -> rx.Component:
    return section(
        "Inspector",
        rx.cond(
            EditorState.selected == "",
            rx.text("Select a node to edit its step.", size="1", color_scheme="gray"),
            rx.vstack(
                rx.form(
                    rx.hstack(
                        rx.input(
                            name="step_name",
                            default_value=EditorState.selected.split("/")[-1],
                            key=EditorState.selected,
                            size="1",
                            id="step-name",
                        ),
                        rx.button("Rename", size="1", type="submit", variant="soft"),
                    ),
                    on_submit=EditorState.rename_node,
                ),
                rx.badge(EditorState.selected_type, variant="outline"),
                rx.cond(
                    EditorState.parts.length() > 0,
                    rx.vstack(
                        rx.text("Prompt", size="1", weight="bold"),
                        rx.foreach(EditorState.parts, _part),
                        width="100%",
                    ),
                ),
                rx.hstack(
                    *[
                        rx.button(
                            "+ " + t, size="1", variant="ghost", on_click=EditorState.add_part(t)
                        )
                        for t in ("static", "previous_response", "file")
                    ],
                    wrap="wrap",
                ),
                rx.foreach(EditorState.fields, _field),
                rx.button(
                    "Delete step",
                    size="1",
                    color_scheme="red",
                    variant="soft",
                    on_click=EditorState.delete_node(EditorState.selected),
                ),
                width="100%",
                spacing="2",
                key=EditorState.selected + "@" + EditorState.revision.to_string(),
            ),
        ),
        id="inspector",
    )


def _version(v: dict[str, Any]) -> rx.Component:
    number = v["number"].to(int)
    return rx.hstack(
        rx.text("v" + v["number"].to_string(), weight="bold", size="1"),
        rx.text(v["label"].to(str), size="1"),
        rx.text(v["message"].to(str), size="1", color_scheme="gray", trim="both"),
        rx.spacer(),
        rx.cond(v["errors"].to(int) > 0, rx.badge("errors", color_scheme="red", size="1")),
        rx.text(v["created_at"].to(str), size="1", color_scheme="gray"),
        data_version=v["number"],
        data_chosen=rx.cond(VersionsState.chosen == number, "true", "false"),
        on_click=VersionsState.choose(number),
        cursor="pointer",
        background=rx.cond(
            VersionsState.chosen == number,
            "var(--accent-a5)",
            rx.cond(VersionsState.other == number, "var(--accent-a3)", "transparent"),
        ),
        padding_x="0.3em",
        border_radius="4px",
        width="100%",
        class_name="version-row",
    )


def _diff_line(d: dict[str, Any]) -> rx.Component:
    return rx.el.div(
        rx.el.span(d["old"].to(str), class_name="diff-no"),
        rx.el.span(d["new"].to(str), class_name="diff-no"),
        rx.el.span(d["kind"].to(str) + " " + d["text"].to(str)),
        class_name="diff-line",
        data_kind=d["kind"],
    )


def versions() -> rx.Component:
    return section(
        "Versions",
        rx.text(
            "Pick two to diff them (one: against the latest); roll back to the last picked.",
            size="1",
            color_scheme="gray",
        ),
        rx.vstack(rx.foreach(VersionsState.versions, _version), id="versions", spacing="1"),
        rx.hstack(
            rx.button("Diff", size="1", id="version-diff", on_click=VersionsState.diff),
            rx.button(
                "Roll back to it",
                size="1",
                variant="soft",
                id="version-rollback",
                on_click=VersionsState.rollback,
                disabled=VersionsState.chosen == 0,
            ),
        ),
        rx.cond(VersionsState.message != "", rx.text(VersionsState.message, size="1")),
        rx.cond(
            VersionsState.error != "",
            rx.text(VersionsState.error, size="1", color_scheme="red"),
        ),
        rx.cond(
            VersionsState.diff_title != "",
            rx.vstack(
                rx.text(VersionsState.diff_title, size="1", weight="bold"),
                rx.box(
                    rx.foreach(VersionsState.diff_lines, _diff_line),
                    class_name="diff",
                    max_height="16em",
                    overflow="auto",
                    width="100%",
                ),
                width="100%",
                id="version-diff-view",
            ),
        ),
    )


def save_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(name="version_name", id="version-name", placeholder="Version name", size="1"),
            rx.input(name="version_message", placeholder="What changed", size="1"),
            rx.button(
                "Save", id="pipeline-save", type="submit", size="1", disabled=EditorState.shipped
            ),
            spacing="2",
        ),
        on_submit=VersionsState.save,
        reset_on_submit=True,
    )


def _input(i: dict[str, Any]) -> rx.Component:
    return rx.vstack(
        rx.text(
            i["name"].to(str),
            rx.cond(i["required"].to(bool), " *", ""),
            size="1",
            weight="bold",
        ),
        rx.input(
            name=i["name"].to(str),
            default_value=i["default"].to(str),
            placeholder=i["description"].to(str),
            size="1",
            width="100%",
        ),
        spacing="0",
        width="100%",
    )


def _history(h: dict[str, Any]) -> rx.Component:
    return rx.hstack(
        status_badge(h["status"].to(str)),
        rx.text("v" + h["version"].to_string(), size="1"),
        rx.text(h["cost"].to(str), size="1"),
        rx.link(h["created_at"].to(str), href=h["href"].to(str), size="1"),
        rx.link("trace", href=h["trace"].to(str), size="1"),
        spacing="2",
        class_name="history-row",
    )


def run_panel() -> rx.Component:
    return section(
        "Run",
        rx.form(
            rx.vstack(
                rx.foreach(EditorRunState.inputs, _input),
                rx.hstack(
                    rx.button(
                        "Run",
                        id="pipeline-run",
                        type="submit",
                        size="1",
                        loading=EditorRunState.running,
                        disabled=EditorState.shipped | (EditorState.error_count > 0),
                    ),
                    rx.cond(
                        EditorRunState.running,
                        rx.button("Stop", size="1", variant="soft", on_click=EditorRunState.stop),
                    ),
                    rx.cond(
                        EditorRunState.run_status != "", status_badge(EditorRunState.run_status)
                    ),
                    rx.text(EditorRunState.run_cost, size="1"),
                ),
                width="100%",
                spacing="2",
            ),
            on_submit=EditorRunState.run,
            id="run-inputs",
            width="100%",
        ),
        rx.cond(
            EditorState.error_count > 0,
            rx.text("Fix the errors to run.", size="1", color_scheme="red"),
        ),
        rx.cond(
            EditorRunState.run_error != "",
            rx.text(EditorRunState.run_error, size="1", color_scheme="red", id="run-error"),
        ),
        rx.cond(
            EditorRunState.error != "",
            rx.text(EditorRunState.error, size="1", color_scheme="red"),
        ),
        rx.text("History", size="1", weight="bold"),
        rx.vstack(rx.foreach(EditorRunState.history, _history), spacing="1", id="run-history"),
    )


def step_output() -> rx.Component:
    s = EditorRunState.step
    return rx.cond(
        s.contains("name"),
        section(
            "Step output",
            rx.hstack(
                rx.text(s["name"].to(str), weight="bold", size="2"),
                status_badge(s["status"].to(str)),
                rx.text(s["model"].to(str), size="1", color_scheme="gray"),
            ),
            rx.hstack(
                rx.text("Cost " + s["cost"].to(str), size="1"),
                rx.text("Latency " + s["latency"].to(str), size="1"),
                spacing="3",
            ),
            rx.hstack(
                rx.foreach(
                    s["tokens"].to(list[dict[str, str]]),
                    lambda t: rx.badge(t["count"] + " " + t["kind"], variant="soft", size="1"),
                ),
                wrap="wrap",
            ),
            rx.cond(
                s["error"].to(str) != "",
                rx.text(s["error"].to(str), color_scheme="red", size="1"),
            ),
            rx.box(
                rx.text(s["text"].to(str), size="1", white_space="pre-wrap"),
                max_height="14em",
                overflow_y="auto",
                width="100%",
                class_name="step-text",
            ),
            rx.link("Open the trace →", href=s["trace"].to(str), size="1"),
            id="step-output",
        ),
    )
