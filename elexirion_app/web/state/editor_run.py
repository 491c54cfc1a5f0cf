"""Running from the editor: the inputs form, live node statuses, a step's output, the
pipeline's run history. The run executes the saved version (the editor saves first when the
text changed) and records which version ran."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import reflex as rx

from elexirion_app.core.errors import ElexirionError, InputError
from elexirion_app.core.money import usd
from elexirion_app.core.threads import in_cpu_thread
from elexirion_app.db.engine import in_session
from elexirion_app.editor import view
from elexirion_app.services.runs import pipeline_runs, runs
from elexirion_app.services.runs import pipeline_store as store
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id
from elexirion_app.web.state.editor import EditorState

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_INPUT_CHARS = 100_000
_ITERATION = re.compile(r"\[\d+\]\.")


@dataclass
class _Started:
    """A run started from an editor tab of this process, from the moment the tab marks
    itself running (before its text is saved): a Stop then is kept and honoured as soon as
    the task exists, and ``prepare`` still sees the tab running."""

    user_id: int
    task: asyncio.Task[Any] | None = None
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()


# By run id (Stop cancels the task).
_TASKS: dict[str, _Started] = {}


def node_of_step(qualname: str) -> str:
    """The engine's step name (``loop[2].inner``) as the graph's node id (``loop/inner``)."""
    return _ITERATION.sub("/", qualname)


class EditorRunState(rx.State):
    inputs: list[dict[str, Any]] = []
    statuses: dict[str, str] = {}
    running: bool = False
    run_id: str = ""
    run_status: str = ""
    run_error: str = ""
    run_cost: str = ""
    history: list[dict[str, Any]] = []
    step: dict[str, Any] = {}
    error: str = ""
    _run_id: str = ""

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await in_session(fn, *args)

    async def _reload_history(self, user_id: int, name: str) -> None:
        rows = await self._db(runs.list_runs_of_pipeline, user_id, name)
        self.history = [
            {
                "id": r.id,
                "status": r.status,
                "cost": r.cost_usd,
                "created_at": r.created_at,
                "version": r.version,
                "href": routes.run_view(r.id),
                "trace": routes.run_trace(r.id),
            }
            for r in rows
        ]

    @rx.event
    async def prepare(self) -> Any:
        """After the editor loaded: the inputs form and the history of this pipeline."""
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        editor = await self.get_state(EditorState)
        self.statuses, self.step, self.error, self.run_error = {}, {}, "", ""
        self.run_id, self.run_status, self.run_cost = "", "", ""
        self.running = self._run_id in _TASKS
        self.history = []
        try:
            shown = await in_cpu_thread(user_id, view_inputs, editor._yaml)
        except ElexirionError as exc:
            self.error, shown = exc.user_message, []
        self.inputs = shown
        if editor.name and not editor.shipped:
            try:
                await self._reload_history(user_id, editor.name)
            except ElexirionError as exc:
                self.error = exc.user_message
        return None

    @rx.event(background=True)
    async def run(self, form_data: Any) -> Any:
        """Save if needed, then run the saved version with the form's inputs, live."""
        async with self:
            user_id = await current_user_id(self)
            if user_id is None:
                return rx.redirect(routes.LOGIN)
            if self.running or self._run_id in _TASKS:
                return None  # one run per editor tab at a time
            editor = await self.get_state(EditorState)
            name, text, shipped = editor.name, editor._yaml, editor.shipped
            dirty = text != editor._saved
            self.error, self.run_error, self.step = "", "", {}
            try:
                inputs = _inputs(form_data, self.inputs)
            except InputError as exc:
                self.error = exc.user_message
                return None
            if not name:
                self.error = "No pipeline is open here: open one from the Pipelines page."
                return None
            if shipped:
                self.error = "Copy this shipped pipeline to your library to run it here."
                return None
            self.running, self.run_status = True, "queued"
            self.run_id = self._run_id = str(uuid.uuid4())
            self.statuses = {n["id"]: "queued" for n in editor.nodes if not n.get("parent")}
            started = _TASKS[self.run_id] = _Started(user_id)
            address = str(self.router.session.client_ip or "")
        run_id = self.run_id
        try:
            if dirty:
                checked = await in_cpu_thread(user_id, _check, user_id, text)
                save = functools.partial(
                    store.save_version,
                    message="Saved to run",
                    checked=checked,
                    address=address,
                    unchanged_ok=True,
                )
                await self._db(save, user_id, name, text)
                async with self:
                    editor = await self.get_state(EditorState)
                    if editor._yaml == text:
                        editor._saved, editor.dirty = text, False
            path, pipeline_id, number = await self._db(store.runnable, user_id, name)
            if started.stopped:
                raise asyncio.CancelledError
            started.task = asyncio.ensure_future(
                pipeline_runs.run_for_user(
                    user_id,
                    path,
                    inputs,
                    self._progress,
                    run_id=run_id,
                    pipeline_version=(pipeline_id, number),
                    address=address,
                )
            )
            outcome = await started.task
            async with self:
                if await self._still_mine(user_id, run_id):
                    self.run_status, self.run_error = outcome.status, outcome.error or ""
                    self.run_cost = usd(outcome.cost)
        except asyncio.CancelledError:
            async with self:
                if await self._still_mine(user_id, run_id):
                    self.run_status, self.run_error = "stopped", "Stopped."
        except ElexirionError as exc:
            async with self:
                if await self._still_mine(user_id, run_id):
                    self.run_status, self.run_error = "failed", exc.user_message
        finally:
            _TASKS.pop(run_id, None)
            async with self:
                # The tab may have changed hands (or opened another pipeline) meanwhile: the
                # identity reset cleared ``_run_id``; then nothing of this run is written.
                if await self._still_mine(user_id, run_id):
                    self.running = False
                    try:
                        await self._reload_history(user_id, name)
                    except ElexirionError as exc:
                        self.error = exc.user_message
        return None

    async def _still_mine(self, user_id: int, run_id: str) -> bool:
        return self._run_id == run_id and await current_user_id(self) == user_id

    async def _progress(self, progress: pipeline_runs.RunProgress) -> None:
        statuses = {node_of_step(s.name): s.status for s in progress.steps}
        async with self:
            if self._run_id != progress.run_id:
                return
            if statuses != self.statuses:
                self.statuses = {**self.statuses, **statuses}
            self.run_status = progress.status
            self.run_cost = usd(progress.cost)

    @rx.event
    async def stop(self) -> Any:
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        started = _TASKS.get(self._run_id)
        if started is not None and started.user_id == user_id:
            started.stop()  # kept when the task does not exist yet
        return None

    @rx.event
    async def show_step(self, node_id: Any) -> Any:
        """The side panel for a node: its output, tokens by type, cost, latency, error, from
        the run shown (the latest one of this pipeline when none ran in this tab)."""
        user_id = await current_user_id(self)
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        await self._fill_step(user_id, node_id)
        return None

    async def _fill_step(self, user_id: int, node_id: Any) -> None:
        self.step = {}
        run_id = self.run_id or (self.history[0]["id"] if self.history else "")
        if not isinstance(node_id, str) or not node_id or not run_id:
            return
        try:
            detail = await self._db(runs.get_run, user_id, run_id)
        except ElexirionError:
            return
        for s in detail.steps:
            if node_of_step(s.name) == node_id or s.name == node_id:
                self.step = {
                    "name": node_id,
                    "run_id": run_id,
                    "status": s.status,
                    "model": s.model or "—",
                    "text": s.text[:20000],
                    "error": s.error,
                    "cost": s.cost_usd,
                    "latency": f"{s.latency_ms:,.0f} ms",
                    "tokens": [
                        {"kind": k.replace("_", " "), "count": f"{v:,}"}
                        for k, v in sorted(s.tokens.items())
                        if v
                    ],
                    "trace": routes.run_trace(run_id),
                }


def _check(user_id: int, text: str) -> store.Checked:
    return store.check_text(text, store.user_dir(user_id))


def view_inputs(text: str) -> list[dict[str, Any]]:
    from elexirion_app.editor.workbench import workflow_of

    return view.input_rows(workflow_of(text))


def _inputs(form_data: Any, declared: list[dict[str, Any]]) -> dict[str, Any]:
    form = form_data if isinstance(form_data, dict) else {}
    out: dict[str, Any] = {}
    for spec in declared:
        raw = form.get(spec["name"], "")
        if not isinstance(raw, str) or len(raw) > MAX_INPUT_CHARS:
            raise InputError(f"input {spec['name']} is too long or not text")
        if raw == "" and spec["required"] and not spec["default"]:
            raise InputError(f"input {spec['name']} is required")
        if raw != "":
            out[spec["name"]] = raw
    return out
