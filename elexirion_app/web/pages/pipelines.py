"""/pipelines — the library: the user's pipelines and the read-only shipped ones."""

from __future__ import annotations

import reflex as rx

from elexirion_app.web.components.common import error_callout
from elexirion_app.web.layout import private_page
from elexirion_app.web.state.library import IMPORT_ID, LibraryRow, LibraryState


def _actions(r: LibraryRow) -> rx.Component:
    return rx.hstack(
        rx.link(
            rx.button(rx.cond(r.shipped, "View", "Edit"), size="1", variant="soft"),
            href=r.href,
            class_name="pipeline-open",
        ),
        rx.cond(
            r.shipped,
            rx.button(
                "Copy to edit",
                size="1",
                variant="soft",
                class_name="pipeline-copy",
                on_click=LibraryState.new_from_template(r.name),
            ),
            rx.button(
                "Duplicate",
                size="1",
                variant="soft",
                class_name="pipeline-duplicate",
                on_click=LibraryState.duplicate(r.name),
            ),
        ),
        rx.button(
            "Export",
            size="1",
            variant="soft",
            class_name="pipeline-export",
            on_click=LibraryState.export(r.name),
        ),
        rx.cond(
            ~r.shipped,
            rx.alert_dialog.root(
                rx.alert_dialog.trigger(
                    rx.button(
                        "Delete",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        class_name="pipeline-delete",
                    )
                ),
                rx.alert_dialog.content(
                    rx.alert_dialog.title("Delete " + r.name + "?"),
                    rx.alert_dialog.description(
                        "Its versions are removed; the runs made with it are kept."
                    ),
                    rx.hstack(
                        rx.alert_dialog.cancel(rx.button("Cancel", variant="soft")),
                        rx.alert_dialog.action(
                            rx.button(
                                "Delete",
                                color_scheme="red",
                                class_name="pipeline-delete-confirm",
                                on_click=LibraryState.delete(r.name),
                            )
                        ),
                        justify="end",
                        spacing="2",
                    ),
                ),
            ),
        ),
        spacing="2",
        wrap="wrap",  # a narrow window wraps the buttons instead of cutting the last one off
        justify="end",
    )


def _row(r: LibraryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.link(rx.text(r.name, weight="medium"), href=r.href),
                rx.text(r.description, size="1", color_scheme="gray", trim="both"),
                spacing="0",
            )
        ),
        rx.table.cell(rx.cond(r.shipped, rx.badge("shipped", variant="soft"), r.source)),
        rx.table.cell(r.steps),
        rx.table.cell(
            rx.cond(
                r.errors > 0,
                rx.badge(r.errors.to_string() + " error(s)", color_scheme="red"),
                rx.badge("valid", color_scheme="green", variant="soft"),
            )
        ),
        rx.table.cell(rx.cond(r.shipped, "—", "v" + r.version.to_string())),
        rx.table.cell(r.updated_at),
        rx.table.cell(_actions(r), min_width="14em"),
        data_pipeline_name=r.name,
        class_name="pipeline-row",
    )


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.input(
            placeholder="Search by name",
            id="pipeline-search",
            on_change=LibraryState.search.debounce(250),
            width="18em",
        ),
        rx.spacer(),
        rx.button("New pipeline", id="pipeline-new", on_click=LibraryState.new_blank),
        rx.upload(
            rx.button("Import .yaml", variant="soft", type="button", title="or drop a file here"),
            id=IMPORT_ID,
            # Just the button (a drop on it still imports): the default dropzone is a large
            # dashed box that dwarfed the toolbar.
            border="none",
            padding="0",
            multiple=False,
            accept={"application/x-yaml": [".yaml", ".yml"], "text/yaml": [".yaml", ".yml"]},
            on_drop=LibraryState.import_files(rx.upload_files(upload_id=IMPORT_ID)),
            no_keyboard=True,
        ),
        width="100%",
        align="center",
        spacing="3",
    )


def _with_input_id(upload: rx.Component, element_id: str) -> rx.Component:
    """Give the dropzone's file ``<input>`` a stable id (browser tests set files on it)."""
    stack = [upload]
    while stack:
        c = stack.pop()
        if getattr(c, "tag", None) == "input":
            c.id = element_id
            return upload
        stack.extend(getattr(c, "children", []))
    raise RuntimeError("the upload component has no file input")


@private_page
def pipelines_page() -> rx.Component:
    toolbar = _toolbar()
    return rx.vstack(
        rx.heading("Pipelines", size="6"),
        rx.text(
            "Your pipelines, with every saved version, and the shipped ones (copy one to edit "
            "it). Pipelines the chat writes appear here too.",
            color_scheme="gray",
        ),
        _with_input_id(toolbar, "pipeline-import"),
        rx.cond(
            LibraryState.message != "",
            rx.callout(LibraryState.message, color_scheme="green", id="library-message"),
        ),
        error_callout(LibraryState.error, "library-error"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in ("Name", "Source", "Steps", "Check", "Version", "Changed", "")
                    ]
                )
            ),
            rx.table.body(rx.foreach(LibraryState.rows, _row)),
            width="100%",
        ),
        padding="2em",
        width="100%",
        max_width="1200px",
        margin_x="auto",
        spacing="3",
    )
