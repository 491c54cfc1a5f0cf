"""Workspace page: upload files or a zip, list and delete them (the user's own folder)."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from elexirion_app.core.errors import AuthError, ElexirionError
from elexirion_app.services import workspace
from elexirion_app.web import routes
from elexirion_app.web.state.auth import AuthState

UPLOAD_ID = "workspace-upload"


@dataclasses.dataclass
class FileRow:
    path: str = ""
    size: str = ""


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n / 1024:,.1f} KB"


class WorkspaceState(rx.State):
    files: list[FileRow] = []
    message: str = ""
    error: str = ""
    folders: list[str] = []
    current_folder: str = ""

    async def _user_id(self) -> int | None:
        try:
            return (await self.get_state(AuthState)).require_user().id
        except AuthError:
            return None

    def _refresh(self, user_id: int) -> None:
        self.folders = [str(p) for p in workspace.allowed_folders()]
        self.current_folder = workspace.chosen_folder(user_id) or ""
        # The files runs will see: the chosen allowed folder (read-only here) or the uploads.
        root = workspace.current_workspace(user_id)
        self.files = [FileRow(f.path, _size(f.size)) for f in workspace.list_files(root)]

    @rx.event
    async def load(self) -> Any:
        user_id = await self._user_id()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.message, self.error = "", ""
        self._refresh(user_id)
        return None

    @rx.event
    async def upload(self, files: list[rx.UploadFile]) -> Any:
        user_id = await self._user_id()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        saved, errors = [], []
        for f in files:
            name = f.filename or "upload"
            try:
                data = await f.read()
                saved.append(workspace.save_file(user_id, name, data).path)
            except ElexirionError as exc:
                errors.append(f"{name}: {exc.user_message}")
        self.message = f"Saved {', '.join(saved)}." if saved else ""
        self.error = " ".join(errors)
        self._refresh(user_id)
        return rx.clear_selected_files(UPLOAD_ID)

    @rx.event
    async def use_folder(self, folder: Any) -> Any:
        """Work in an admin-allowed folder ("" = back to the uploaded files)."""
        user_id = await self._user_id()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        try:
            workspace.choose_folder(user_id, str(folder) if folder else None)
            self.error = ""
            self.message = (
                f"Runs now work in {folder}." if folder else "Runs now work in your uploaded files."
            )
        except ElexirionError as exc:
            self.error = exc.user_message
        self._refresh(user_id)
        return None

    @rx.event
    async def delete(self, path: Any) -> Any:
        user_id = await self._user_id()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        try:
            workspace.delete_file(user_id, str(path))
            self.error = ""
        except ElexirionError as exc:
            self.error = exc.user_message
        self._refresh(user_id)
        return None
