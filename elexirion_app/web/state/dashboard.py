"""/dashboard: spend, tokens, calls, runs, latency — the user's own, or (admins) anyone's.

Every handler is a public endpoint: the user comes from the session cookie of the event
(``current_user_id``) on every call, and ``services.billing.dashboard`` checks in the database
whose rows that user may see (a member's "user" filter is ignored: their own rows only). The
filter values kept here are only what the page shows; each load validates them again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import reflex as rx

from elexirion_app.core.errors import ElexirionError, InputError, PermissionDenied
from elexirion_app.core.money import usd
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.services.billing import dashboard
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id

log = logging.getLogger(__name__)
T = TypeVar("T")
ANY = "any"  # a select's "no filter" item (a Radix select item cannot be "")
FILTERS = ("range", "grouping", "model", "provider", "pipeline", "caller", "user")
DEFAULTS = {
    "range": "30d",
    "grouping": "day",
    "model": ANY,
    "provider": ANY,
    "pipeline": ANY,
    "caller": ANY,
    "user": "me",
}
MAX_VALUE = 200
SLOWEST_MS = 20000.0  # the last finite histogram bound: a percentile there means "> 20 s"


@dataclasses.dataclass
class Kpi:
    id: str = ""
    label: str = ""
    value: str = ""
    hint: str = ""


@dataclasses.dataclass
class TopRunRow:
    id: str = ""
    pipeline: str = ""
    status: str = ""
    cost: str = ""
    when: str = ""
    who: str = ""
    href: str = ""


@dataclasses.dataclass
class TopConversationRow:
    id: int = 0
    title: str = ""
    calls: int = 0
    cost: str = ""
    when: str = ""
    who: str = ""
    href: str = ""


@dataclasses.dataclass
class Choice:
    value: str = ""
    label: str = ""


def money(value: Decimal) -> str:
    return usd(value)


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= SLOWEST_MS:
        return "> 20 s"
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def _num(n: int) -> str:
    if n >= 10_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 100_000:
        return f"{n / 1000:.0f}k"
    return f"{n:,}"


def _kpis(d: dashboard.Dashboard) -> list[Kpi]:
    t, r = d.totals, d.run_totals
    tokens = sum(t.tokens.values())
    rate = f"{100 * t.errors / t.calls:.1f}%" if t.calls else "0%"
    return [
        Kpi("kpi-spend", "Spend", money(t.cost_usd), "live provider calls"),
        Kpi(
            "kpi-live",
            "Would cost live",
            money(t.live_estimate_usd),
            f"estimate for {_num(t.offline_calls)} offline calls · not in spend",
        ),
        Kpi("kpi-calls", "LLM calls", _num(t.calls), f"{_num(t.errors)} errors · {rate}"),
        Kpi("kpi-runs", "Pipeline runs", _num(r.runs), f"{_num(r.failed)} not succeeded"),
        Kpi(
            "kpi-tokens",
            "Tokens",
            _num(tokens),
            f"{_num(t.tokens['input'])} in · {_num(t.tokens['output'])} out",
        ),
        Kpi(
            "kpi-latency",
            "Latency p50 / p95",
            f"{ms(t.latency_p50_ms)} / {ms(t.latency_p95_ms)}",
            "≤ bucket bound",
        ),
        Kpi(
            "kpi-ttft",
            "Time to first token",
            f"{ms(t.ttft_p50_ms)} / {ms(t.ttft_p95_ms)}",
            "p50 / p95",
        ),
    ]


def _chart_ms(value: float | None) -> float | None:
    return None if value is None else min(value, SLOWEST_MS)


def _series(d: dashboard.Dashboard) -> list[dict[str, Any]]:
    out = []
    for p in d.periods:
        u = p.usage
        row: dict[str, Any] = {"period": p.key, **u.tokens}
        row.update(
            cost=round(float(u.cost_usd), 6),
            live=round(float(u.live_estimate_usd), 6),
            calls=u.calls,
            errors=u.errors,
            runs=p.runs.runs,
            lat_p50=_chart_ms(u.latency_p50_ms),
            lat_p95=_chart_ms(u.latency_p95_ms),
            ttft_p50=_chart_ms(u.ttft_p50_ms),
            ttft_p95=_chart_ms(u.ttft_p95_ms),
        )
        out.append(row)
    return out


def _models(d: dashboard.Dashboard) -> list[dict[str, Any]]:
    return [
        {
            "model": model,
            "provider": provider,
            "cost": round(float(m.cost_usd), 6),
            "live": round(float(m.live_estimate_usd), 6),
            "calls": m.calls,
            "errors": m.errors,
            "tokens": _num(sum(m.tokens.values())),
            "cost_text": money(m.cost_usd),
            "live_text": money(m.live_estimate_usd),
            "p95": ms(m.latency_p95_ms),
        }
        for model, provider, m in d.models
    ]


def _values(raw: Any) -> dict[str, str]:
    """The filters as held by the tab (any client can set them): only known keys, only text;
    anything else falls back to its default (the service validates the rest)."""
    raw = raw if isinstance(raw, dict) else {}
    out = {}
    for key in FILTERS:
        value = raw.get(key)
        out[key] = value if isinstance(value, str) and len(value) <= MAX_VALUE else DEFAULTS[key]
    return out


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


class DashboardState(rx.State):
    filters: dict[str, str] = dict(DEFAULTS)
    models: list[str] = []
    providers: list[str] = []
    pipelines: list[str] = []
    callers: list[str] = []
    users: list[Choice] = []
    is_admin: bool = False
    scope_label: str = ""
    range_label: str = ""
    kpis: list[Kpi] = []
    series: list[dict[str, Any]] = []
    by_model: list[dict[str, Any]] = []
    top_runs: list[TopRunRow] = []
    top_conversations: list[TopConversationRow] = []
    loaded: bool = False
    error: str = ""

    def _clear(self) -> None:
        self.kpis, self.series, self.by_model = [], [], []
        self.top_runs, self.top_conversations, self.users = [], [], []
        self.models, self.providers, self.pipelines, self.callers = [], [], [], []
        self.is_admin, self.scope_label, self.range_label, self.loaded = False, "", "", False

    async def _run(
        self, me: int, values: dict[str, str], fn: Callable[[dashboard.Dashboard], T]
    ) -> tuple[dashboard.Dashboard, T] | None:
        """Load the dashboard for ``values`` as user ``me`` (a database thread), then
        ``fn(result)`` there too. A refusal becomes ``self.error``."""

        def job() -> tuple[dashboard.Dashboard, T]:
            f = dashboard.parse_filters(
                range_=values["range"],
                grouping=values["grouping"],
                user=values["user"],
                model=values["model"],
                provider=values["provider"],
                pipeline=values["pipeline"],
                caller=values["caller"],
            )
            with session_scope() as session:
                d = dashboard.load(session, me, f)
            return d, fn(d)

        try:
            return await in_db_thread(job)
        except PermissionDenied as exc:
            self._clear()
            self.error = exc.user_message
        except ElexirionError as exc:
            self.error = exc.user_message
        return None

    def _show(self, d: dashboard.Dashboard, me: int) -> None:
        self.is_admin, self.scope_label = d.is_admin, d.scope_label
        self.range_label = f"{_when(d.scope.since)} → {_when(d.scope.until)} UTC"
        self.kpis, self.series, self.by_model = _kpis(d), _series(d), _models(d)
        self.models = d.options.get("model", [])
        self.providers = d.options.get("provider", [])
        self.pipelines = d.options.get("pipeline", [])
        self.callers = d.options.get("caller", [])
        self.users = [Choice("me", "Me"), Choice("all", "Everyone")] + [
            Choice(str(i), e) for i, e in d.users if i != me
        ]
        if not d.is_admin:
            self.users = []
            self.filters = {**_values(self.filters), "user": "me"}
        self.top_runs = [
            TopRunRow(
                id=r.id,
                pipeline=r.pipeline or "(inline)",
                status=r.status,
                cost=money(r.cost_usd),
                when=_when(r.created_at),
                who=r.email,
                href=routes.run_trace(r.id),
            )
            for r in d.top_runs
        ]
        self.top_conversations = [
            TopConversationRow(
                id=c.id,
                title=c.title,
                calls=c.calls,
                cost=money(c.cost_usd),
                when=_when(c.last_at),
                who=c.email,
                href=routes.chat_conversation(c.id) if c.user_id == me else "",
            )
            for c in d.top_conversations
        ]
        self.loaded, self.error = True, ""

    async def _refresh(self, values: dict[str, str]) -> Any:
        me = await current_user_id(self)
        if me is None:
            self._clear()
            return rx.redirect(routes.LOGIN)
        done = await self._run(me, values, lambda _d: None)
        if done is not None:
            self.filters = values
            self._show(done[0], me)
        return None

    @rx.event
    async def load(self) -> Any:
        self.error = ""
        return await self._refresh(_values(self.filters))

    @rx.event
    async def set_filter(self, name: Any, value: Any) -> Any:
        if await current_user_id(self) is None:
            self._clear()
            return rx.redirect(routes.LOGIN)
        if name not in FILTERS or not isinstance(value, str) or len(value) > MAX_VALUE:
            self.error = InputError("That filter is not valid.").user_message
            return None
        return await self._refresh({**_values(self.filters), name: value})

    @rx.event
    async def reset_filters(self) -> Any:
        return await self._refresh(dict(DEFAULTS))

    @rx.event
    async def export_csv(self) -> Any:
        """A CSV of exactly what the page shows for its filters (loaded again, so the figures
        are this user's and current)."""
        me = await current_user_id(self)
        if me is None:
            self._clear()
            return rx.redirect(routes.LOGIN)
        done = await self._run(me, _values(self.filters), dashboard.to_csv)
        if done is None:
            return None
        self._show(done[0], me)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return rx.download(data=done[1], filename=f"elexirion-usage-{stamp}.csv")
