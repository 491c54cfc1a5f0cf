"""/workspace"""

from __future__ import annotations

import reflex as rx

from elexirion_app.services import workspace
from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.workspace import (
    MAX_UPLOAD_FILES,
    UPLOAD_ID,
    FileRow,
    WorkspaceState,
)


def _limits() -> str:
    per_file = workspace.MAX_FILE_BYTES // (1024 * 1024)
    quota = workspace.quota_bytes() // (1024 * 1024)
    return f"max {per_file} MB a file, {quota} MB in all"


def _file(f: FileRow) -> rx.Component:
    delete = rx.icon_button(
        rx.icon("trash-2", size=14),
        size="1",
        variant="ghost",
        color_scheme="red",
        on_click=WorkspaceState.delete(f.path),
        aria_label="Delete file",
    )
    return rx.table.row(
        rx.table.cell(rx.code(f.path)),
        rx.table.cell(f.size),
        # Files of an admin-allowed folder are listed, never deleted from here.
        rx.table.cell(rx.cond(WorkspaceState.current_folder == "", delete)),
        class_name="workspace-file",
    )


def _folder(folder: rx.Var[str]) -> rx.Component:
    in_use = WorkspaceState.current_folder == folder
    return rx.hstack(
        rx.code(folder),
        rx.cond(
            in_use,
            rx.badge("in use", color_scheme="green"),
            rx.button(
                "Use this folder",
                size="1",
                variant="soft",
                on_click=WorkspaceState.use_folder(folder),
                class_name="use-folder",
            ),
        ),
        align="center",
    )


def folders() -> rx.Component:
    return rx.cond(
        WorkspaceState.folders.length() > 0,
        rx.vstack(
            rx.heading("Folders the admin allowed", size="3"),
            rx.foreach(WorkspaceState.folders, _folder),
            rx.cond(
                WorkspaceState.current_folder != "",
                rx.button(
                    "Use my uploaded files instead",
                    size="1",
                    variant="ghost",
                    on_click=WorkspaceState.use_folder(""),
                ),
                rx.text("Runs use your uploaded files.", size="2", color_scheme="gray"),
            ),
            spacing="2",
        ),
    )


@private_page
def workspace_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Workspace", size="6"),
        rx.text(
            "Files here are what your code-analysis and refactoring runs can read (and, for "
            "refactoring, write). Upload source files or a .zip of a project "
            f"({_limits()}).",
            color_scheme="gray",
        ),
        folders(),
        rx.upload(
            rx.vstack(
                rx.icon("upload", size=24),
                rx.text("Drop files or a .zip here, or click to choose"),
                align="center",
            ),
            id=UPLOAD_ID,
            multiple=True,
            max_files=MAX_UPLOAD_FILES,
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
