"""Runs pages: the user's runs and one run's steps, tokens and cost."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from elexirion_app.core.errors import ElexirionError
from elexirion_app.db.engine import in_session
from elexirion_app.services.runs import runs
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id


@dataclasses.dataclass
class RunRow:
    id: str = ""
    pipeline: str = ""
    status: str = ""
    cost_usd: str = ""
    tokens: str = ""
    created_at: str = ""
    duration: str = ""


@dataclasses.dataclass
class StepRow:
    name: str = ""
    step_type: str = ""
    status: str = ""
    model: str = ""
    tokens: str = ""
    cost_usd: str = ""
    latency: str = ""
    error: str = ""
    result_json: str = ""
    text: str = ""


def _tokens(tokens: dict[str, int]) -> str:
    if not tokens:
        return "—"
    main = f"{tokens.get('input', 0):,} in / {tokens.get('output', 0):,} out"
    extra = [
        f"{tokens[k]:,} {label}"
        for k, label in (
            ("cache_read", "cache read"),
            ("cache_write", "cache write"),
            ("thinking", "thinking"),
        )
        if tokens.get(k)
    ]
    return ", ".join([main, *extra])


def _row(v: runs.RunView) -> RunRow:
    return RunRow(
        id=v.id,
        pipeline=v.pipeline,
        status=v.status,
        cost_usd=v.cost_usd,
        tokens=_tokens(v.tokens),
        created_at=v.created_at,
        duration="—" if v.duration_s is None else f"{v.duration_s:.2f} s",
    )


class RunsState(rx.State):
    runs: list[RunRow] = []
    run: RunRow = RunRow()
    steps: list[StepRow] = []
    run_error: str = ""
    calls: str = ""
    error: str = ""
    trace_items: list[dict[str, Any]] = []
    trace_total: str = ""

    async def _user_id(self) -> int | None:
        return await current_user_id(self)

    @rx.event
    async def load_list(self) -> Any:
        user_id = await self._user_id()
        if user_id is None:
            return rx.redirect(routes.LOGIN)

        self.runs = [_row(v) for v in await in_session(runs.list_runs, user_id)]
        return None

    @rx.event
    async def load_detail(self) -> Any:
        user_id = await self._user_id()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        run_id = self.router.url.query_parameters.get("id", "")
        self.error, self.steps, self.run = "", [], RunRow()

        try:
            view = await in_session(runs.get_run, user_id, run_id)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        self.run = _row(view)
        self.run_error = view.error
        self.calls = f"{view.llm_calls} LLM call(s), {view.failed_calls} failed"
        self.steps = [
            StepRow(
                name=s.name,
                step_type=s.step_type,
                status=s.status,
                model=s.model or "—",
                tokens=_tokens(s.tokens),
                cost_usd=s.cost_usd,
                latency=f"{s.latency_ms:,.0f} ms",
                error=s.error,
                result_json=s.result_json,
                text=s.text,
            )
            for s in view.steps
        ]
        return None

    @rx.event
    async def load_trace(self) -> Any:
        """/runs/trace?id=…: steps and LLM attempts on one timeline."""
        user_id = await self._user_id()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        run_id = self.router.url.query_parameters.get("id", "")
        self.error, self.trace_items, self.trace_total, self.run = "", [], "", RunRow()

        try:
            view = await in_session(runs.trace, user_id, run_id)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        self.run = _row(view.run)
        total = view.total_ms
        self.trace_total = f"{total:,.0f} ms"
        self.trace_items = [
            {
                "kind": i.kind,
                "label": i.label,
                "status": i.status,
                "detail": i.detail,
                "error": i.error,
                "left": f"{100 * i.start_ms / total:.2f}%",
                "width": f"{max(0.4, 100 * i.duration_ms / total):.2f}%",
                "span": f"{i.start_ms:,.0f} → {i.start_ms + i.duration_ms:,.0f} ms",
            }
            for i in view.items
        ]
        return None
