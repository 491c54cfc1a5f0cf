"""The pipeline editor: one YAML text (the truth), its graph, problems and inspector.

Every handler checks the user from the session cookie and the pipeline's owner in the store;
a shipped pipeline opens read-only. Typing sends the text (debounced) and gets back problems
and the graph, never the text itself; a graph or inspector edit rewrites the text on the
server (ruamel round trip: comments and key order stay) and bumps ``revision`` so the editor
replaces its document. Dragging a node keeps its position server-side and sends nothing back
unless it changed the step order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx

from elexirion_app.core.errors import ElexirionError, InputError
from elexirion_app.core.threads import in_cpu_thread
from elexirion_app.db.engine import in_file_thread, in_session
from elexirion_app.editor import view
from elexirion_app.editor import workbench as model
from elexirion_app.services.runs import pipeline_store as store
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ID = 500


def _analyse(user_id: int, text: str, layout: dict[str, Any]) -> model.Shown:
    return model.analyse(text, store.user_dir(user_id), layout)


def _node_arg(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        raise InputError("That step does not exist.")
    return value


class EditorState(rx.State):
    name: str = ""
    title: str = ""
    shipped: bool = False
    # The text the YAML editor shows; replaced (with a new revision) only by server edits.
    yaml_text: str = ""
    revision: int = 0
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    diagnostics: list[dict[str, Any]] = []
    node_problems: dict[str, str] = {}
    error_count: int = 0
    selected: str = ""
    fields: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    selected_type: str = ""
    dirty: bool = False
    # The YAML does not parse into steps: the graph shows the last text that did (said so).
    graph_stale: bool = False
    # The page's pipeline could not be opened (unknown, another user's): nothing to edit.
    not_found: bool = False
    error: str = ""
    message: str = ""
    _yaml: str = ""
    _saved: str = ""
    _layout: dict[str, Any] = {}

    # -- plumbing ---------------------------------------------------------------------------

    async def _user(self) -> int | None:
        return await current_user_id(self)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await in_session(fn, *args)

    async def _editable(self) -> int | None:
        """The user, if they may change this pipeline (their own, open in this tab)."""
        user_id = await self._user()
        if user_id is None:
            return None
        if not self.name:
            self.error = "No pipeline is open here: open one from the Pipelines page."
            return None
        if self.shipped:
            self.error = "Shipped pipelines are read-only: copy it to edit."
            return None
        return user_id

    async def _show(self, user_id: int, text: str) -> None:
        """Recompute problems, graph and inspector for ``text`` (the new truth).

        Only the vars whose value changed are assigned: Reflex sends every assigned var, and
        every component reading this state re-renders when one arrives. A keystroke in a step
        name sends its nodes and edges, not the problems, lint markers and inspector again.
        """
        try:  # CPU work: on the CPU pool, one job of this user at a time (core/threads)
            shown = await in_cpu_thread(user_id, _analyse, user_id, text, self._layout)
        except ElexirionError as exc:
            self._yaml, self.error = text, exc.user_message
            return
        self._yaml = text
        changes: dict[str, Any] = {
            "dirty": text != self._saved,
            "problems": shown.problems,
            "diagnostics": shown.diagnostics,
            "error_count": shown.errors,
            "node_problems": shown.node_problems,
        }
        if shown.workflow.get("name"):
            changes["title"] = str(shown.workflow["name"])[:200]
        if shown.nodes is not None and shown.edges is not None:
            changes["nodes"], changes["edges"] = shown.nodes, shown.edges
        changes["graph_stale"] = shown.nodes is None and bool(self.nodes)
        for name, value in changes.items():
            if getattr(self, name) != value:
                setattr(self, name, value)
        self._inspect(shown)

    def _inspect(self, shown: model.Shown) -> None:
        step = shown.step(self.selected) if self.selected else None
        changes: dict[str, Any] = {"selected": "", "fields": [], "parts": [], "selected_type": ""}
        if step is not None:
            changes = {
                "selected_type": str(step.get("type") or ""),
                "fields": view.inspector_fields(step),
                "parts": view.prompt_parts(step),
            }
        for name, value in changes.items():  # unchanged vars are not sent again
            if getattr(self, name) != value:
                setattr(self, name, value)

    async def _replace(self, user_id: int, text: str) -> None:
        """A server-side edit: new text for the YAML editor, autosaved as the draft."""
        await self._db(store.save_draft, user_id, self.name, text)
        self.yaml_text = text
        self.revision += 1
        await self._show(user_id, text)

    async def _edit(self, fn: Callable[..., model.Edited], *args: Any) -> Any:
        user_id = await self._editable()
        if user_id is None:
            return rx.redirect(routes.LOGIN) if await self._user() is None else None
        self.error, self.message = "", ""
        try:
            edited = await in_cpu_thread(user_id, model.as_user, user_id, fn, self._yaml, *args)
            if edited.select is not None:
                self.selected = edited.select
            await self._replace(user_id, edited.text)
        except ElexirionError as exc:
            self.error = exc.user_message
        return None

    # -- handlers ---------------------------------------------------------------------------

    @rx.event
    async def load(self) -> Any:
        user_id = await self._user()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        query = self.router.url.query_parameters
        self.error, self.message, self.selected = "", "", ""
        self.not_found, self.graph_stale = False, False
        try:
            if query.get("shipped"):
                detail = await in_file_thread(store.open_shipped, query.get("shipped"))
            else:
                detail = await self._db(store.open_pipeline, user_id, query.get("name"))
        except ElexirionError as exc:
            self.name, self.nodes, self.edges, self.yaml_text = "", [], [], ""
            self.title, self._yaml, self._saved, self.problems = "", "", "", []
            self.error_count, self.dirty, self.not_found = 0, False, True
            self.error = exc.user_message
            return None
        self.name, self.title, self.shipped = detail.name, detail.title, detail.shipped
        self._saved, self._layout = detail.saved_yaml, detail.layout
        self.yaml_text = detail.yaml
        self.revision += 1
        self.nodes, self.edges = [], []
        await self._show(user_id, detail.yaml)
        from elexirion_app.web.state.editor_run import EditorRunState
        from elexirion_app.web.state.editor_versions import VersionsState

        return [VersionsState.refresh, EditorRunState.prepare]

    @rx.event
    async def yaml_changed(self, text: Any) -> Any:
        """The YAML editor's text after typing (debounced in the browser)."""
        user_id = await self._editable()
        if user_id is None:
            return rx.redirect(routes.LOGIN) if await self._user() is None else None
        if not isinstance(text, str):
            self.error = "The editor sent something that is not text."
            return None
        if text == self._yaml:
            return None
        self.error = ""
        try:
            await self._db(store.save_draft, user_id, self.name, text)
            await self._show(user_id, text)
        except ElexirionError as exc:
            self.error = exc.user_message
        return None

    @rx.event
    async def add_step(self, step_type: Any) -> Any:
        """A step from the palette, after the selected one (or at the end)."""
        if not isinstance(step_type, str) or len(step_type) > 40:
            self.error = "Unknown step type."
            return None
        return await self._edit(model.insert_after, step_type, self.selected)

    @rx.event
    async def select_node(self, node_id: Any) -> Any:
        user_id = await self._user()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.selected = node_id if isinstance(node_id, str) and len(node_id) <= MAX_ID else ""
        await self._show(user_id, self._yaml)
        from elexirion_app.web.state.editor_run import EditorRunState

        run_state = await self.get_state(EditorRunState)
        await run_state._fill_step(user_id, self.selected)
        return None

    @rx.event
    async def delete_node(self, node_id: Any) -> Any:
        try:
            node = _node_arg(node_id)
        except InputError as exc:
            self.error = exc.user_message
            return None
        return await self._edit(model.delete, node, self.selected)

    @rx.event
    async def connect_nodes(self, source: Any, target: Any) -> Any:
        try:
            src, dst = _node_arg(source), _node_arg(target)
        except InputError as exc:
            self.error = exc.user_message
            return None
        return await self._edit(model.connect, src, dst)

    @rx.event
    async def node_dragged(self, node_id: Any, x: Any, y: Any, index: Any) -> Any:
        """End of a drag: a new place among its siblings reorders; else keep the position."""
        user_id = await self._editable()
        if user_id is None:
            return rx.redirect(routes.LOGIN) if await self._user() is None else None
        try:
            node = _node_arg(node_id)
            if not isinstance(index, int) or isinstance(index, bool):
                raise InputError("That position is not valid.")
            place = model.index_of(self.nodes, node)
            if place is None:  # only the graph's own steps have positions (finding 10)
                raise InputError("That step does not exist.")
            if place != index:
                self._layout.pop(node, None)
                return await self._edit(model.move, node, index)
            known = [n["id"] for n in self.nodes]
            await self._db(store.set_position, user_id, self.name, node, x, y, known)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        self._layout = {**self._layout, node: [x, y]}
        return None

    @rx.event
    async def set_field(self, key: Any, value: Any) -> Any:
        """An inspector field of the selected step ("" removes the key)."""
        field = next((f for f in self.fields if f["key"] == key), None)
        if field is None or not self.selected:
            self.error = "That field does not exist."
            return None
        user_id = await self._editable()
        if user_id is None:
            return rx.redirect(routes.LOGIN) if await self._user() is None else None
        try:  # a list/object value is YAML of up to 200k characters: not for the event loop
            parsed = await in_cpu_thread(
                user_id, view.coerce, field["kind"], value, field["options"]
            )
        except ElexirionError as exc:
            self.error = f"{field['label']}: {exc.user_message}"
            return None
        return await self._edit(model.set_value, self.selected, tuple(key.split(".")), parsed)

    @rx.event
    async def set_part(self, index: Any, value: Any) -> Any:
        """The main text of prompt part ``index`` of the selected step."""
        part = next((p for p in self.parts if p["index"] == index), None)
        if part is None or not self.selected:
            self.error = "That prompt part does not exist."
            return None
        if not isinstance(value, str) or len(value) > view.MAX_FIELD_CHARS:
            self.error = "A prompt part is text."
            return None
        path = ("prompt", index, part["field"])
        return await self._edit(model.set_value, self.selected, path, value)

    @rx.event
    async def add_part(self, part_type: Any) -> Any:
        if part_type not in ("static", "previous_response", "file") or not self.selected:
            self.error = "Choose a prompt part type."
            return None
        return await self._edit(model.add_part, self.selected, part_type)

    @rx.event
    async def remove_part(self, index: Any) -> Any:
        if not any(p["index"] == index for p in self.parts) or not self.selected:
            self.error = "That prompt part does not exist."
            return None
        return await self._edit(model.remove_part, self.selected, index)

    @rx.event
    async def rename_node(self, form_data: Any) -> Any:
        new = form_data.get("step_name") if isinstance(form_data, dict) else None
        if not isinstance(new, str) or not self.selected:
            self.error = "Give the step a name."
            return None
        return await self._edit(model.rename, self.selected, new.strip())

    @rx.event
    async def copy_to_library(self) -> Any:
        """A shipped pipeline opened read-only: copy it to the user's library and edit that."""
        user_id = await self._user()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        if not self.shipped:
            return None
        try:
            name = await self._db(store.copy_shipped, user_id, self.name)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        return rx.redirect(routes.pipeline_edit(name))

    @rx.event
    async def export(self) -> Any:
        user_id = await self._user()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        if not self.name:
            return None
        return rx.download(data=self._yaml, filename=f"{self.name.replace('/', '_')}.yaml")
