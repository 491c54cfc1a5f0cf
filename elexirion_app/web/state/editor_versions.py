"""The editor's versions panel: save (a named version), diff two versions, roll back."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx

from elexirion_app.core.errors import ElexirionError
from elexirion_app.core.ids import parse_id
from elexirion_app.core.threads import in_cpu_thread
from elexirion_app.db.engine import in_session
from elexirion_app.editor.diff import compare
from elexirion_app.services.runs import pipeline_store as store
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id
from elexirion_app.web.state.editor import EditorState

T = TypeVar("T")


def _check(user_id: int, text: str) -> store.Checked:
    return store.check_text(text, store.user_dir(user_id))


def _address(state: rx.State) -> str:
    """The client's address for the audit log."""
    return str(state.router.session.client_ip or "")


class VersionsState(rx.State):
    versions: list[dict[str, Any]] = []
    chosen: int = 0  # the version picked last in the list (roll back to it)
    other: int = 0  # the one picked before it (diff the two; or chosen → latest)
    diff_lines: list[dict[str, Any]] = []
    diff_title: str = ""
    error: str = ""
    message: str = ""

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await in_session(fn, *args)

    async def _editor(self) -> tuple[int | None, EditorState]:
        editor = await self.get_state(EditorState)
        return await current_user_id(self), editor

    async def _reload(self, user_id: int, name: str) -> None:
        detail = await self._db(store.open_pipeline, user_id, name)
        self.versions = [
            {
                "number": v.number,
                "label": v.label,
                "message": v.message,
                "errors": v.errors,
                "created_at": v.created_at,
            }
            for v in detail.versions
        ]

    @rx.event
    async def refresh(self) -> Any:
        user_id, editor = await self._editor()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.error, self.message, self.diff_lines, self.diff_title = "", "", [], ""
        self.versions, self.chosen, self.other = [], 0, 0
        if editor.shipped or not editor.name:
            return None
        try:
            await self._reload(user_id, editor.name)
        except ElexirionError as exc:
            self.error = exc.user_message
        return None

    @rx.event
    async def save(self, form_data: Any) -> Any:
        """Save the editor's text as a new version (errors allowed: such a draft can't run)."""
        user_id, editor = await self._editor()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        if editor.shipped or not editor.name:
            self.error = "Shipped pipelines are read-only: copy it to edit."
            return None
        form = form_data if isinstance(form_data, dict) else {}
        self.error, self.message = "", ""
        text = editor._yaml
        try:
            # Parse and validate on the CPU pool; the database thread only writes.
            checked = await in_cpu_thread(user_id, _check, user_id, text)
            save = functools.partial(
                store.save_version,
                label=form.get("version_name", ""),
                message=form.get("version_message", ""),
                checked=checked,
                address=_address(self),
            )
            saved = await self._db(save, user_id, editor.name, text)
            await self._reload(user_id, editor.name)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        editor._saved, editor.dirty = text, False
        issues = f" with {saved.errors} error(s): it can't run yet" if saved.errors else ""
        self.message = f"Saved version {saved.number}{issues}."
        return None

    @rx.event
    async def choose(self, number: Any) -> Any:
        user_id, _ = await self._editor()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        chosen = parse_id(number)
        if not chosen or not any(v["number"] == chosen for v in self.versions):
            return None
        if chosen != self.chosen:
            self.other, self.chosen = self.chosen, chosen
        return None

    @rx.event
    async def diff(self) -> Any:
        """Line diff of the two versions picked last (older → newer); with one picked, from it
        to the latest (from the one before, when the latest is picked)."""
        user_id, editor = await self._editor()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        numbers = sorted(v["number"] for v in self.versions)
        if not self.chosen or self.chosen not in numbers:
            self.error = "Pick a version in the list first."
            return None
        if len(numbers) < 2:
            self.error = "There is only one version: nothing to compare."
            return None
        if self.other in numbers and self.other != self.chosen:
            old_n, new_n = sorted((self.other, self.chosen))
        else:
            new_n = numbers[-1]
            old_n = self.chosen if self.chosen != new_n else numbers[-2]
        self.error = ""
        try:
            old = await self._db(store.version_yaml, user_id, editor.name, old_n)
            new = await self._db(store.version_yaml, user_id, editor.name, new_n)
            # CPU work (bounded: editor/diff), on the CPU pool as one of this user's jobs
            diffed = await in_cpu_thread(user_id, compare, old, new)
        except ElexirionError as exc:
            self.error = exc.user_message
            self.diff_lines, self.diff_title = [], ""
            return None
        lines, added, removed = diffed.lines, diffed.added, diffed.removed
        self.diff_title = f"Version {old_n} → {new_n}: +{added} −{removed} lines"
        self.diff_lines = [
            {
                "kind": d.kind,
                "text": d.text,
                "old": str(d.old_no or ""),
                "new": str(d.new_no or ""),
            }
            for d in lines
        ]
        return None

    @rx.event
    async def rollback(self) -> Any:
        """A new version equal to the chosen one; the editor shows it."""
        user_id, editor = await self._editor()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        if editor.shipped or not editor.name or not self.chosen:
            self.error = "Pick a version in the list first."
            return None
        self.error, self.message = "", ""
        try:
            rollback = functools.partial(store.rollback, address=_address(self))
            back = await self._db(rollback, user_id, editor.name, self.chosen)
            text = await self._db(store.version_yaml, user_id, editor.name, back.number)
            await self._reload(user_id, editor.name)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        editor._saved = text
        await editor._replace(user_id, text)
        self.message = f"Version {back.number} is version {self.chosen} again."
        return None
