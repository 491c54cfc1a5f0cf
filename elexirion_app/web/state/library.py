"""The pipeline library page: the user's pipelines and the shipped ones."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx
from starlette.datastructures import UploadFile as StarletteUploadFile

from elexirion_app.core.errors import ElexirionError, InputError
from elexirion_app.db.engine import in_file_thread, in_session
from elexirion_app.services.runs import pipeline_store as store
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id

log = logging.getLogger(__name__)
T = TypeVar("T")
IMPORT_ID = "pipeline-import-zone"
MAX_ARG_CHARS = 200


@dataclasses.dataclass
class LibraryRow:
    name: str = ""
    title: str = ""
    description: str = ""
    steps: int = 0
    errors: int = 0
    version: int = 0
    updated_at: str = ""
    shipped: bool = False
    source: str = ""
    href: str = ""


def _row(s: store.PipelineSummary) -> LibraryRow:
    return LibraryRow(
        name=s.name,
        title=s.title,
        description=s.description,
        steps=s.steps,
        errors=s.errors,
        version=s.current_version,
        updated_at=s.updated_at,
        shipped=s.shipped,
        source=s.source,
        href=routes.pipeline_edit(s.name, shipped=s.shipped),
    )


def _name_arg(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ARG_CHARS:
        raise InputError("That pipeline name is not valid.")
    return value


def _read_upload(f: Any) -> tuple[str, bytes]:
    if not isinstance(f, StarletteUploadFile) or f.file is None:
        raise InputError("That is not an uploaded file.")
    data = f.file.read(store.MAX_YAML_BYTES + 1)
    name = f.filename if isinstance(f.filename, str) and f.filename else "imported.yaml"
    return name, data


class LibraryState(rx.State):
    rows: list[LibraryRow] = []
    query: str = ""
    message: str = ""
    error: str = ""

    async def _work(self, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(session, *args)`` in a database thread; a refusal becomes ``self.error``."""

        try:
            return await in_session(fn, *args)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None

    async def _refresh(self, user_id: int) -> None:
        rows = await self._work(store.list_library, user_id, self.query)
        self.rows = [_row(r) for r in rows or []]

    @rx.event
    async def load(self) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        await self._work(store.sync_files, user_id)
        await self._refresh(user_id)
        return None

    @rx.event
    async def search(self, query: Any) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.query = query[:100] if isinstance(query, str) else ""
        await self._refresh(user_id)
        return None

    async def _then_open(self, name: str | None) -> Any:
        return rx.redirect(routes.pipeline_edit(name)) if name else None

    @rx.event
    async def new_blank(self) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.error = ""
        return await self._then_open(await self._work(store.new_blank, user_id, "untitled"))

    @rx.event
    async def new_from_template(self, key: Any) -> Any:
        """A copy of a shipped pipeline, opened in the editor."""
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.error = ""
        try:
            key = _name_arg(key)
        except InputError as exc:
            self.error = exc.user_message
            return None
        return await self._then_open(await self._work(store.copy_shipped, user_id, key))

    @rx.event
    async def duplicate(self, name: Any) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        try:
            name = _name_arg(name)
        except InputError as exc:
            self.error = exc.user_message
            return None
        copy = await self._work(store.duplicate, user_id, name)
        if copy:
            self.message = f"Copied to {copy}."
        await self._refresh(user_id)
        return None

    @rx.event
    async def delete(self, name: Any) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        try:
            name = _name_arg(name)
        except InputError as exc:
            self.error = exc.user_message
            return None
        delete = functools.partial(
            store.delete_pipeline, address=str(self.router.session.client_ip or "")
        )
        await self._work(delete, user_id, name)
        if not self.error:
            self.message = f"Deleted {name}; its runs are kept."
        await self._refresh(user_id)
        return None

    @rx.event
    async def export(self, name: Any) -> Any:
        """Download the current version (a shipped one as shipped)."""
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.error = ""
        try:
            name = _name_arg(name)
        except InputError as exc:
            self.error = exc.user_message
            return None
        if name in await in_file_thread(store.shipped_pipelines):
            detail = await in_file_thread(store.open_shipped, name)
        else:
            found = await self._work(store.open_pipeline, user_id, name)
            if found is None:
                return None
            detail = found
        text = detail.saved_yaml or detail.yaml
        return rx.download(data=text, filename=f"{detail.name.replace('/', '_')}.yaml")

    @rx.event
    async def import_files(self, files: list[rx.UploadFile]) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        if not isinstance(files, list) or len(files) != 1:
            self.error = "Import one .yaml file at a time."
            return rx.clear_selected_files(IMPORT_ID)
        try:
            filename, data = await in_file_thread(_read_upload, files[0])
        except InputError as exc:
            self.error = exc.user_message
            return rx.clear_selected_files(IMPORT_ID)
        result = await self._work(store.import_file, user_id, filename, data)
        if result is None:
            return rx.clear_selected_files(IMPORT_ID)
        name, warning, errors = result
        imported = f"Imported as {name}." + (f" {warning}" if warning else "")
        if errors:  # kept as sent, but it cannot run until it is fixed: say so, not in green
            plural = "s" if errors > 1 else ""
            self.error = f"{imported} It has {errors} error{plural}: open it to see and fix them."
        else:
            self.message = imported
        await self._refresh(user_id)
        return rx.clear_selected_files(IMPORT_ID)
