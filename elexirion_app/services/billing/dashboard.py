"""The cost and performance dashboard: whose usage, which slice, and every figure shown.

CONTRACT:
- ``parse_filters`` turns untrusted form values into ``Filters`` (InputError for anything
  else): a range preset (``RANGES``) or from/to days (at most ``MAX_DAYS``), a grouping
  (``GROUPINGS``), model / provider / pipeline / caller names ("" or "any": no filter) and a
  user choice ("me", "all" or a user id).
- ``resolve_scope`` checks the acting user *in the database* on every call: an inactive or
  unknown user is PermissionDenied; a member always gets their own rows, whatever user the
  filters name; an admin gets everyone ("all"), one user (an id) or themself ("me").
- ``load`` returns every figure of the page, each an indexed aggregate over the rollup tables
  (``dashboard_sql``); the costliest runs / conversations are LIMITed top-N queries
  (``dashboard_top``). Spend is
  ``cost_usd`` only; what offline calls would cost live is reported apart, never added to it.
- ``to_csv`` is the CSV of a loaded dashboard (exactly the figures shown).
- Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlmodel import Session

from elexirion_app.core.errors import InputError, PermissionDenied
from elexirion_app.db.billing_models import OK_RUN_STATUSES
from elexirion_app.db.models import AppUser
from elexirion_app.services.billing import dashboard_options as option_lists
from elexirion_app.services.billing import dashboard_runs as run_sql
from elexirion_app.services.billing import dashboard_sql as sql
from elexirion_app.services.billing import dashboard_top as top_lists
from elexirion_app.services.billing.dashboard_runs import RunMeasures
from elexirion_app.services.billing.dashboard_sql import TOKEN_KINDS, Measures, Scope
from elexirion_app.services.billing.dashboard_top import TopConversation, TopRun

RANGES = {"24h": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365}
GROUPINGS = ("day", "week", "month")
MAX_DAYS = 366
MAX_NAME = 200
TOP_N = 10
ANY = ("", "any")

__all__ = [
    "GROUPINGS",
    "RANGES",
    "TOKEN_KINDS",
    "Dashboard",
    "Filters",
    "Measures",
    "Period",
    "RunMeasures",
    "Scope",
    "TopConversation",
    "TopRun",
    "load",
    "parse_filters",
    "resolve_scope",
    "to_csv",
]


@dataclass(frozen=True)
class Filters:
    since: datetime
    until: datetime
    grouping: str = "day"
    user: str = "me"  # "me" | "all" | a user id (digits)
    model: str | None = None
    provider: str | None = None
    pipeline: str | None = None
    caller: str | None = None


@dataclass(frozen=True)
class Period:
    key: str
    usage: Measures
    runs: RunMeasures


@dataclass(frozen=True)
class Dashboard:
    scope: Scope
    is_admin: bool
    scope_label: str  # "your usage" | "everyone" | an email
    totals: Measures
    run_totals: RunMeasures
    periods: list[Period]
    models: list[tuple[str, str, Measures]]
    top_runs: list[TopRun]
    top_conversations: list[TopConversation]
    options: dict[str, list[str]]
    users: list[tuple[int, str]] = field(default_factory=list)  # admins only


def _name(value: object, what: str) -> str | None:
    if value is None or value in ANY:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME or not value.isprintable():
        raise InputError(f"The {what} filter is not valid.")
    return value


def _day(value: object, what: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 10:
        raise InputError(f"The {what} date is a day like 2026-03-04.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"The {what} date is a day like 2026-03-04.") from None


def _user(value: object) -> str:
    if value is None or value in ANY or value == "me":
        return "me"
    if value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**62:
        return str(value)
    if isinstance(value, str) and value.isdigit() and len(value) < 19 and int(value) > 0:
        return str(int(value))
    raise InputError("Pick a user from the list.")


def parse_filters(
    *,
    range_: object = "30d",
    since: object = "",
    until: object = "",
    grouping: object = "day",
    user: object = "me",
    model: object = "",
    provider: object = "",
    pipeline: object = "",
    caller: object = "",
    now: datetime | None = None,
) -> Filters:
    """Filters from form values. From/to days (UTC, ``until`` inclusive) win over the preset."""
    now = now or datetime.now(UTC)
    if grouping not in GROUPINGS:
        raise InputError("Group by day, week or month.")
    first, last = _day(since, "from"), _day(until, "to")
    if first or last:
        end = datetime.combine(last + timedelta(days=1), time.min, UTC) if last else now
        start = datetime.combine(first, time.min, UTC) if first else end - timedelta(days=30)
    else:
        if not isinstance(range_, str) or range_ not in RANGES:
            raise InputError("Pick a range from the list.")
        end, start = now, now - timedelta(days=RANGES[range_])
    if start >= end:
        raise InputError("The 'from' date must be before the 'to' date.")
    if end - start > timedelta(days=MAX_DAYS):
        raise InputError(f"A range is at most {MAX_DAYS} days.")
    return Filters(
        since=start,
        until=end,
        grouping=str(grouping),
        user=_user(user),
        model=_name(model, "model"),
        provider=_name(provider, "provider"),
        pipeline=_name(pipeline, "pipeline"),
        caller=_name(caller, "caller"),
    )


def resolve_scope(session: Session, actor_id: object, f: Filters) -> tuple[Scope, bool, str]:
    """The rows this actor may see for these filters: (scope, actor is admin, label)."""
    if not isinstance(actor_id, int) or isinstance(actor_id, bool):
        raise PermissionDenied()
    actor = session.get(AppUser, actor_id)
    if actor is None or not actor.is_active:
        raise PermissionDenied()
    target: int | None = actor_id
    label = "your usage"
    if actor.is_admin and f.user == "all":
        target, label = None, "everyone"
    elif actor.is_admin and f.user.isdigit() and int(f.user) != actor_id:
        other = session.get(AppUser, int(f.user))
        if other is None:
            raise InputError("Pick a user from the list.")
        target, label = int(f.user), other.email
    scope = Scope(
        since=f.since,
        until=f.until,
        grouping=f.grouping,
        user_id=target,
        model=f.model,
        provider=f.provider,
        pipeline=f.pipeline,
        caller=f.caller,
    )
    return scope, actor.is_admin, label


def load(session: Session, actor_id: object, f: Filters, *, top: int = TOP_N) -> Dashboard:
    scope, is_admin, label = resolve_scope(session, actor_id, f)
    top = max(1, min(int(top), 50))
    usage, totals = sql.series_and_totals(session, scope)
    runs, run_totals = run_sql.run_series_and_totals(session, scope)
    empty = RunMeasures(0, 0, Decimal("0"), None)
    keys = sorted({k for k, _m in usage} | set(runs) | set(period_keys(scope)))
    by_key = dict(usage)
    periods = [Period(k, by_key.get(k) or _no_usage(), runs.get(k, empty)) for k in keys]
    return Dashboard(
        scope=scope,
        is_admin=is_admin,
        scope_label=label,
        totals=totals,
        run_totals=run_totals,
        periods=periods,
        models=sql.by_model(session, scope),
        top_runs=top_lists.top_runs(session, scope, top),
        top_conversations=top_lists.top_conversations(session, scope, top),
        options=option_lists.options(session, scope),
        users=top_lists.users(session) if is_admin else [],
    )


def period_keys(scope: Scope) -> list[str]:
    """Every day / week (its Monday) / month label of the range, as the SQL labels them (the
    charts show the empty periods too)."""
    first = scope.since.astimezone(UTC).date()
    last = (scope.until.astimezone(UTC) - timedelta(microseconds=1)).date()
    if scope.grouping == "month":
        out, y, m = [], first.year, first.month
        while (y, m) <= (last.year, last.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out
    step = 7 if scope.grouping == "week" else 1
    day = first - timedelta(days=first.weekday()) if step == 7 else first
    out = []
    while day <= last:
        out.append(day.isoformat())
        day += timedelta(days=step)
    return out


def _no_usage() -> Measures:
    return Measures(
        0,
        0,
        Decimal("0"),
        Decimal("0"),
        0,
        dict.fromkeys(TOKEN_KINDS, 0),
        None,
        None,
        None,
        None,
        None,
    )


# --- CSV ---------------------------------------------------------------------------------

CSV_COLUMNS = [
    "section",  # total | day | week | month | model | run | conversation
    "key",  # the scope, a period, a model, a run id, a conversation id
    "label",  # a model's provider, a run's pipeline, a conversation's title
    "calls",
    "errors",
    "cost_usd",
    "would_cost_live_usd",  # offline calls, priced as if live (never part of cost_usd)
    *[f"{k}_tokens" for k in TOKEN_KINDS],
    "latency_p50_ms",
    "latency_p95_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "runs",
    "failed_runs",
    "run_cost_usd",
]


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return "inf" if value == float("inf") else f"{value:g}"


def _usage_cells(m: Measures) -> dict[str, str]:
    cells = {
        "calls": str(m.calls),
        "errors": str(m.errors),
        "cost_usd": f"{m.cost_usd:.8f}",
        "would_cost_live_usd": f"{m.live_estimate_usd:.8f}",
        "latency_p50_ms": _ms(m.latency_p50_ms),
        "latency_p95_ms": _ms(m.latency_p95_ms),
        "ttft_p50_ms": _ms(m.ttft_p50_ms),
        "ttft_p95_ms": _ms(m.ttft_p95_ms),
    }
    cells.update({f"{k}_tokens": str(m.tokens[k]) for k in TOKEN_KINDS})
    return cells


def _run_cells(r: RunMeasures) -> dict[str, str]:
    return {"runs": str(r.runs), "failed_runs": str(r.failed), "run_cost_usd": f"{r.cost_usd:.8f}"}


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(d: Dashboard) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, CSV_COLUMNS, restval="", lineterminator="\n")
    w.writeheader()
    w.writerow(
        {"section": "total", "key": _safe(d.scope_label)}
        | _usage_cells(d.totals)
        | _run_cells(d.run_totals)
    )
    for p in d.periods:
        w.writerow(
            {"section": d.scope.grouping, "key": p.key} | _usage_cells(p.usage) | _run_cells(p.runs)
        )
    for model, provider, m in d.models:
        w.writerow(
            {"section": "model", "key": _safe(model), "label": _safe(provider)} | _usage_cells(m)
        )
    for r in d.top_runs:
        w.writerow(
            {"section": "run", "key": r.id, "label": _safe(r.pipeline), "runs": "1"}
            | {
                "run_cost_usd": f"{r.cost_usd:.8f}",
                "failed_runs": "0" if r.status in OK_RUN_STATUSES else "1",
            }
        )
    for c in d.top_conversations:
        w.writerow(
            {"section": "conversation", "key": str(c.id), "label": _safe(c.title)}
            | {"calls": str(c.calls), "cost_usd": f"{c.cost_usd:.8f}"}
        )
    return out.getvalue()
