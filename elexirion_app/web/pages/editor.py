"""/pipelines/edit?name=… (own) or ?shipped=… (read-only): graph ⇄ YAML editor."""

from __future__ import annotations

import reflex as rx

from elexirion_app.pipelines.spec import json_schema
from elexirion_app.web import routes
from elexirion_app.web.components import editor_panels as panels
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.components.flow import pipeline_graph
from elexirion_app.web.components.yaml_editor import yaml_editor
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.editor import EditorState
from elexirion_app.web.state.editor_run import EditorRunState


def _header() -> rx.Component:
    return rx.hstack(
        rx.link("← Pipelines", href=routes.PIPELINES, size="2"),
        rx.heading(EditorState.name, size="4", id="pipeline-name"),
        rx.text(EditorState.title, size="2", color_scheme="gray"),
        rx.cond(EditorState.dirty, rx.badge("unsaved changes", color_scheme="amber")),
        rx.cond(
            EditorState.error_count > 0,
            rx.badge(EditorState.error_count.to_string() + " error(s)", color_scheme="red"),
        ),
        rx.spacer(),
        rx.cond(
            EditorState.not_found,
            rx.fragment(),  # nothing opened: nothing to save, copy or export
            rx.hstack(
                rx.cond(
                    EditorState.shipped,
                    rx.hstack(
                        rx.badge("shipped · read-only", variant="soft"),
                        rx.button("Copy to edit", size="1", on_click=EditorState.copy_to_library),
                    ),
                    panels.save_form(),
                ),
                rx.button("Export", size="1", variant="soft", on_click=EditorState.export),
                align="center",
                spacing="3",
            ),
        ),
        align="center",
        spacing="3",
        padding_x="1em",
        padding_y="0.5em",
        border_bottom="1px solid var(--gray-a4)",
        width="100%",
    )


def _graph() -> rx.Component:
    return rx.box(
        pipeline_graph(
            nodes=EditorState.nodes,
            edges=EditorState.edges,
            statuses=EditorRunState.statuses,
            problems=EditorState.node_problems,
            selected=EditorState.selected,
            on_select=EditorState.select_node,
            on_drag_stop=EditorState.node_dragged,
            on_connect=EditorState.connect_nodes,
            on_delete=EditorState.delete_node,
        ),
        rx.cond(
            EditorState.graph_stale,
            rx.callout(
                "The YAML does not read as a pipeline now: the graph shows the last version"
                " that did. Fix the problems listed below the YAML to update it.",
                icon="triangle_alert",
                color_scheme="amber",
                size="1",
                id="graph-stale",
                position="absolute",
                top="0.5em",
                left="0.5em",
                right="0.5em",
                z_index="5",
            ),
        ),
        flex="1",
        min_width="0",
        height="100%",
        position="relative",
        id="pipeline-graph",
    )


def _yaml() -> rx.Component:
    return rx.vstack(
        rx.box(
            yaml_editor(
                value=EditorState.yaml_text,
                revision=EditorState.revision,
                diagnostics=EditorState.diagnostics,
                schema=json_schema(),
                on_change=EditorState.yaml_changed,
                read_only=EditorState.shipped,
            ),
            flex="1",
            min_height="0",
            width="100%",
            overflow="hidden",
        ),
        panels.problems(),
        width="34%",
        min_width="320px",
        height="100%",
        spacing="0",
        border_left="1px solid var(--gray-a4)",
    )


def _side() -> rx.Component:
    return rx.vstack(
        panels.step_output(),
        panels.inspector(),
        panels.run_panel(),
        panels.versions(),
        width="22em",
        min_width="22em",
        height="100%",
        overflow_y="auto",
        spacing="0",
        border_left="1px solid var(--gray-a4)",
    )


@private_page
def editor_page() -> rx.Component:
    return rx.vstack(
        _header(),
        error_callout(EditorState.error, "editor-error"),
        rx.cond(
            EditorState.message != "",
            rx.callout(EditorState.message, color_scheme="green", id="editor-message"),
        ),
        rx.cond(
            EditorState.not_found,
            rx.center(
                rx.vstack(
                    rx.heading("Nothing to edit here", size="4"),
                    rx.text(
                        "This pipeline is not in your library. Open one of yours, or copy a"
                        " shipped one, from the Pipelines page.",
                        color_scheme="gray",
                    ),
                    rx.link(rx.button("Go to Pipelines"), href=routes.PIPELINES),
                    align="center",
                    spacing="3",
                ),
                flex="1",
                width="100%",
                id="editor-not-found",
            ),
            rx.hstack(
                panels.palette(),
                _graph(),
                _yaml(),
                _side(),
                flex="1",
                min_height="0",
                width="100%",
                spacing="0",
                align="stretch",
            ),
        ),
        height="100%",
        width="100%",
        spacing="0",
    )
