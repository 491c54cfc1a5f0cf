"""Workspace page: upload files or a zip, list and delete them (the user's own folder).

Every handler is a public endpoint: the user comes from the session cookie of the request
(``current_user_id``), every argument is checked for type and size before use, and all file
and database work runs in a thread (``asyncio.to_thread``) so the event loop never blocks.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable
from typing import IO, Any, TypeVar, cast

import reflex as rx
from starlette.datastructures import UploadFile as StarletteUploadFile

from elexirion_app.core.errors import ElexirionError, InputError
from elexirion_app.db.engine import in_file_thread
from elexirion_app.services import workspace
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id

log = logging.getLogger(__name__)

UPLOAD_ID = "workspace-upload"
MAX_UPLOAD_FILES = 50  # per upload request (the page's dropzone allows as many)
MAX_ARG_CHARS = 4096

T = TypeVar("T")


@dataclasses.dataclass
class FileRow:
    path: str = ""
    size: str = ""


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n / 1024:,.1f} KB"


def _text_arg(value: Any, what: str) -> str:
    """A client-sent path or folder: text of a sane length, or a clear ``InputError``."""
    if not isinstance(value, str) or len(value) > MAX_ARG_CHARS:
        raise InputError(f"That {what} is not valid.")
    return value


def _upload_parts(f: Any) -> tuple[str, IO[bytes]]:
    """The name and readable file of one uploaded file, whatever the client sent instead."""
    if not isinstance(f, StarletteUploadFile):
        raise InputError("That is not an uploaded file.")
    src = getattr(f, "file", None)
    try:
        name = f.filename
    except (AttributeError, TypeError):  # a forged payload coerced into an UploadFile
        name = None
    if not isinstance(src, io.IOBase) or not src.readable():
        raise InputError("That is not an uploaded file.")
    return (name if isinstance(name, str) and name else "upload"), cast(IO[bytes], src)


class WorkspaceState(rx.State):
    files: list[FileRow] = []
    message: str = ""
    error: str = ""
    folders: list[str] = []
    current_folder: str = ""

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T | None:
        """Run ``fn`` in a thread; a failure becomes ``self.error`` (None returned)."""
        try:
            return await in_file_thread(fn, *args)
        except ElexirionError as exc:
            self.error = exc.user_message
        except OSError:
            log.exception("workspace operation %s failed", getattr(fn, "__name__", fn))
            self.error = "The server could not read or write your workspace. Please try again."
        return None

    async def _refresh(self, user_id: int) -> None:
        view = await self._blocking(workspace.overview, user_id)
        if view is None:
            self.files = []
            return
        self.folders = list(view.folders)
        self.current_folder = view.current_folder
        # The files runs will see: the chosen allowed folder (read-only here) or the uploads.
        self.files = [FileRow(f.path, _size(f.size)) for f in view.files]

    @rx.event
    async def load(self) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        await self._refresh(user_id)
        return None

    @rx.event
    async def upload(self, files: list[rx.UploadFile]) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        if not isinstance(files, list) or len(files) > MAX_UPLOAD_FILES:
            self.error = f"Upload between 1 and {MAX_UPLOAD_FILES} files at a time."
            return rx.clear_selected_files(UPLOAD_ID)
        saved: list[str] = []
        errors: list[str] = []
        for f in files:
            try:
                name, src = _upload_parts(f)
            except InputError as exc:
                errors.append(exc.user_message)
                continue
            entry = await self._blocking(workspace.save_upload, user_id, name, src)
            if entry is None:
                errors.append(self.error)
            else:
                saved.append(entry.path)
        self.message = f"Saved {', '.join(saved)}." if saved else ""
        self.error = " ".join(errors)
        await self._refresh(user_id)
        return rx.clear_selected_files(UPLOAD_ID)

    @rx.event
    async def use_folder(self, folder: Any) -> Any:
        """Work in an admin-allowed folder ("" = back to the uploaded files)."""
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        try:
            chosen = None if folder is None or folder == "" else _text_arg(folder, "folder")
        except InputError as exc:
            self.error = exc.user_message
            return None
        done = await self._blocking(_choose, user_id, chosen)
        if done:
            self.message = (
                f"Runs now work in {chosen}." if chosen else "Runs now work in your uploaded files."
            )
        await self._refresh(user_id)
        return None

    @rx.event
    async def delete(self, path: Any) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        try:
            rel = _text_arg(path, "file name")
        except InputError as exc:
            self.error = exc.user_message
            return None
        await self._blocking(workspace.delete_file, user_id, rel)
        await self._refresh(user_id)
        return None


def _choose(user_id: int, folder: str | None) -> bool:
    workspace.choose_folder(user_id, folder)
    return True
