"""/workspace"""

from __future__ import annotations

import reflex as rx

from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.workspace import UPLOAD_ID, FileRow, WorkspaceState


def _file(f: FileRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(f.path)),
        rx.table.cell(f.size),
        rx.table.cell(
            rx.icon_button(
                rx.icon("trash-2", size=14),
                size="1",
                variant="ghost",
                color_scheme="red",
                on_click=WorkspaceState.delete(f.path),
                aria_label="Delete file",
            ),
        ),
        class_name="workspace-file",
    )


@private_page
def workspace_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Workspace", size="6"),
        rx.text(
            "Files here are what your code-analysis and refactoring runs can read (and, for "
            "refactoring, write). Upload source files or a .zip of a project (max 5 MB a file, "
            "50 MB in all).",
            color_scheme="gray",
        ),
        rx.upload(
            rx.vstack(
                rx.icon("upload", size=24),
                rx.text("Drop files or a .zip here, or click to choose"),
                align="center",
            ),
            id=UPLOAD_ID,
            multiple=True,
            max_files=50,
            border="1px dashed var(--gray-a7)",
            padding="2em",
            width="100%",
            border_radius="8px",
        ),
        rx.hstack(
            rx.foreach(rx.selected_files(UPLOAD_ID), lambda name: rx.badge(name)),
            wrap="wrap",
        ),
        rx.button(
            "Upload",
            id="workspace-upload-submit",
            on_click=WorkspaceState.upload(rx.upload_files(upload_id=UPLOAD_ID)),
        ),
        rx.cond(
            WorkspaceState.message != "",
            rx.callout(WorkspaceState.message, color_scheme="green", id="workspace-message"),
        ),
        error_callout(WorkspaceState.error, "workspace-error"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("File"),
                    rx.table.column_header_cell("Size"),
                    rx.table.column_header_cell(""),
                )
            ),
            rx.table.body(rx.foreach(WorkspaceState.files, _file)),
            width="100%",
        ),
        padding="2em",
        width="100%",
        max_width="1000px",
        margin_x="auto",
        spacing="3",
    )
