"""Spend caps that are enforced: reserve before a provider call, settle after it (issue 10).

Caps (``budget`` rows, set by admins or ``python -m elexirion_app budget set``): a user's
``monthly_usd`` and ``per_run_usd``, and the global row (``user_id`` NULL) whose
``monthly_usd`` caps everyone's spend together and whose ``per_run_usd`` is the per-run cap of
users without their own. Before each live call ``reserve`` holds the call's worst-case cost
(``estimate``: input tokens counted with tiktoken + ``max_tokens`` × the output price) against
what is left of every cap that applies: spent (rollups / the run's ledger rows) + reserved by
calls in flight + this estimate must stay within the cap, else ``BudgetExceeded`` with the
numbers. The check and the reservation are one atomic step: SQLite ``BEGIN IMMEDIATE`` (the
database write lock), PostgreSQL the budget rows locked ``FOR UPDATE`` (in id order), so two
concurrent calls cannot both take the last dollar. After the call the ledger books the actual
cost and settles the reservation in the same transaction. Unsettled reservations older than
15 minutes (a crashed worker) stop counting. At ``warn_ratio`` (80%) a warning is logged and
``Reservation.warning`` / ``status(...).warn`` tell the UI. Offline calls are never refused.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from elexirion_app.core import pricing
from elexirion_app.core.errors import BudgetExceeded, InputError
from elexirion_app.core.types import LLMRequest, Usage
from elexirion_app.db.engine import get_engine, in_db_thread, reading
from elexirion_app.db.models import Budget, BudgetReservation, LLMCall, UsageRollup, utcnow

log = logging.getLogger(__name__)

BUDGET = Budget.__table__  # type: ignore[attr-defined]
RESERVATION = BudgetReservation.__table__  # type: ignore[attr-defined]
ROLLUP = UsageRollup.__table__  # type: ignore[attr-defined]
CALL = LLMCall.__table__  # type: ignore[attr-defined]
ZERO = Decimal("0")
RESERVATION_TTL = timedelta(minutes=15)


# --- the estimate ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _encoding() -> Any:
    """tiktoken's cl100k_base, read from litellm's bundled copy (this machine is offline)."""
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils"
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled / "tokenizers"))
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=())) if text else 0


def estimate(request: LLMRequest, model: str) -> Decimal:
    """The worst-case cost of ``request`` on ``model``: its input tokens counted, plus
    ``max_tokens`` (and a thinking budget) of output, times the turns of a tool loop."""
    prompt = sum(count_tokens(m.content) + 4 for m in request.messages)
    prompt += count_tokens(request.system or "")
    budget = getattr(request, "thinking_budget", None) or 0
    per_turn = pricing.cost(model, Usage(input=prompt, output=request.max_tokens + int(budget)))
    turns = max(1, request.max_turns) if request.allowed_tools else 1
    return per_turn * turns


# --- reserve / settle --------------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    id: int
    amount: Decimal
    warning: str | None = None  # set when a cap is at or past its warn ratio
    engine: Engine | None = None  # the database it is held in (None: the app's)


def month_start(now: datetime | None = None) -> datetime:
    now = (now or utcnow()).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


# The statements of every check, built once (a check runs before every live call and each run
# start): values are bound parameters. The caps: the user's row and the global one, by id.
_CAPS = (
    select(BUDGET)
    .where(or_(BUDGET.c.user_id == bindparam("user_id"), BUDGET.c.user_id.is_(None)))
    .order_by(BUDGET.c.id)
)
_CAPS_LOCKED = _CAPS.with_for_update()


def _sum(column: Any) -> Any:
    return select(func.coalesce(func.sum(column), 0))


def _held() -> Any:
    return _sum(RESERVATION.c.amount_usd).where(
        RESERVATION.c.settled_at.is_(None), RESERVATION.c.created_at > bindparam("after")
    )


_SPENT_ALL = _sum(ROLLUP.c.cost_usd).where(ROLLUP.c.hour >= bindparam("since"))
_SPENT_USER = _SPENT_ALL.where(ROLLUP.c.user_id == bindparam("user_id"))
_SPENT_RUN = _sum(CALL.c.cost_usd).where(CALL.c.run_id == bindparam("run_id"))
_HELD_ALL = _held()
_HELD_USER = _held().where(RESERVATION.c.user_id == bindparam("user_id"))
_HELD_RUN = _held().where(RESERVATION.c.run_id == bindparam("run_id"))
# A cap's spent and held sums in one round trip: (spent, held) per scope.
_TOTALS = {
    scope: select(spent.scalar_subquery(), held.scalar_subquery())
    for scope, spent, held in (
        ("monthly", _SPENT_USER, _HELD_USER),
        ("global", _SPENT_ALL, _HELD_ALL),
        ("run", _SPENT_RUN, _HELD_RUN),
    )
}


def _caps(conn: Connection, user_id: int, *, lock: bool) -> tuple[Any | None, Any | None]:
    """(the user's budget row, the global row); locked FOR UPDATE on PostgreSQL."""
    q = _CAPS_LOCKED if lock and conn.dialect.name == "postgresql" else _CAPS
    mine = other = None
    for row in conn.execute(q, {"user_id": user_id}).all():
        if row.user_id is None:
            other = row
        else:
            mine = row
    return mine, other


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else ZERO


def _spent_month(conn: Connection, user_id: int | None, since: datetime) -> Decimal:
    if user_id is None:
        return _dec(conn.execute(_SPENT_ALL, {"since": since}).scalar_one())
    return _dec(conn.execute(_SPENT_USER, {"since": since, "user_id": user_id}).scalar_one())


def _reserved(conn: Connection, *, user_id: int | None = None) -> Decimal:
    """What unsettled, recent reservations hold: the user's, or everyone's."""
    params: dict[str, Any] = {"after": utcnow() - RESERVATION_TTL}
    if user_id is None:
        return _dec(conn.execute(_HELD_ALL, params).scalar_one())
    return _dec(conn.execute(_HELD_USER, {**params, "user_id": user_id}).scalar_one())


def _totals(conn: Connection, scope: str, **params: Any) -> tuple[Decimal, Decimal]:
    """(spent, held) for ``scope``'s cap (monthly: the user's, global, run): its ledger or
    rollup sum and its reservations' in one statement."""
    spent, held = conn.execute(
        _TOTALS[scope], {"after": utcnow() - RESERVATION_TTL, **params}
    ).one()
    return _dec(spent), _dec(held)


def _checks(
    conn: Connection, user_id: int, run_id: str | None, mine: Any | None, other: Any | None
) -> list[tuple[str, Decimal, Decimal, Decimal, float]]:
    """(scope, cap, spent, reserved, warn ratio) for every cap that applies."""
    since = month_start()
    out: list[tuple[str, Decimal, Decimal, Decimal, float]] = []
    if mine is not None and mine.monthly_usd is not None and user_id:
        spent, held = _totals(conn, "monthly", since=since, user_id=user_id)
        out.append(("monthly", _dec(mine.monthly_usd), spent, held, float(mine.warn_ratio)))
    if other is not None and other.monthly_usd is not None:
        spent, held = _totals(conn, "global", since=since)
        out.append(("global", _dec(other.monthly_usd), spent, held, float(other.warn_ratio)))
    per_run = mine if mine is not None and mine.per_run_usd is not None else other
    if run_id and per_run is not None and per_run.per_run_usd is not None:
        spent, held = _totals(conn, "run", run_id=run_id)
        out.append(("run", _dec(per_run.per_run_usd), spent, held, float(per_run.warn_ratio)))
    return out


def _verdict(
    conn: Connection,
    uid: int,
    run_id: str | None,
    mine: Any | None,
    other: Any | None,
    amount: Decimal,
) -> list[str]:
    """Raise ``BudgetExceeded`` if holding ``amount`` crosses a cap that applies (an amount of
    0 is refused once a cap is used up); else the warnings of caps at their warn ratio."""
    warnings: list[str] = []
    for scope, cap, spent, held, ratio in _checks(conn, uid, run_id, mine, other):
        total = spent + held + amount
        if total > cap or (amount == 0 and total >= cap):
            raise BudgetExceeded(scope=scope, cap=cap, spent=spent, reserved=held, estimate=amount)
        if cap > 0 and total >= cap * Decimal(str(ratio)):
            warnings.append(f"{scope} budget at {float(total / cap):.0%} of ${cap:.2f}")
    return warnings


def precheck(
    user_id: int | None,
    amount: Decimal,
    *,
    run_id: str | None = None,
    engine: Engine | None = None,
) -> str | None:
    """Would a call holding ``amount`` be refused now? ``BudgetExceeded`` if so (nothing is
    held: the caller answers before starting work, e.g. HTTP 402); else the warning text of a
    cap at its warn ratio, or None. Concurrent calls are still settled by ``reserve``."""
    uid = int(user_id or 0)
    with reading(engine) as conn:
        mine, other = _caps(conn, uid, lock=False)
        if mine is None and other is None:
            return None
        return "; ".join(_verdict(conn, uid, run_id, mine, other, amount)) or None


def _begin_locked(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, held to the commit


def reserve(
    user_id: int | None,
    run_id: str | None,
    amount: Decimal,
    *,
    engine: Engine | None = None,
) -> Reservation | None:
    """Hold ``amount`` against every cap that applies, atomically, or raise ``BudgetExceeded``.

    None when no cap applies (nothing to hold)."""
    engine = engine or get_engine()
    uid = int(user_id or 0)
    with reading(engine) as conn:
        mine, other = _caps(conn, uid, lock=False)
    if mine is None and other is None:
        return None
    with engine.connect() as conn:
        _begin_locked(conn)
        try:
            mine, other = _caps(conn, uid, lock=True)
            warnings = _verdict(conn, uid, run_id, mine, other, amount)
            result = conn.execute(
                RESERVATION.insert().values(
                    user_id=uid, run_id=run_id, amount_usd=amount, created_at=utcnow()
                )
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    key = result.inserted_primary_key
    assert key is not None
    warning = "; ".join(warnings) or None
    if warning:
        log.warning("budget warning for user %s (run %s): %s", uid, run_id, warning)
    return Reservation(int(key[0]), amount, warning, engine)


def release(reservation_id: int, *, engine: Engine | None = None) -> None:
    """Settle a reservation whose call booked nothing (refused, or no attempt was made)."""
    with (engine or get_engine()).begin() as conn:
        conn.execute(
            update(RESERVATION)
            .where(RESERVATION.c.id == reservation_id, RESERVATION.c.settled_at.is_(None))
            .values(settled_at=utcnow())
        )


async def reserve_async(
    user_id: int | None, run_id: str | None, amount: Decimal
) -> Reservation | None:
    return await in_db_thread(reserve, user_id, run_id, amount)


async def release_async(reservation_id: int) -> None:
    await in_db_thread(release, reservation_id)


# --- setting and showing caps ------------------------------------------------------------


MAX_CAP_USD = Decimal("1000000000")


def parse_usd(value: Decimal | float | str | None, what: str) -> Decimal | None:
    """A cap in dollars (to 1/100 cent), or InputError naming ``what``; None: no cap."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError as exc:
        raise InputError(f"{what} must be a number of dollars") from exc
    if not amount.is_finite() or amount < 0:
        raise InputError(f"{what} must be zero or more dollars")
    if amount > MAX_CAP_USD:
        raise InputError(f"{what} must be at most {MAX_CAP_USD:,} dollars")
    return amount.quantize(Decimal("0.0001"))


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()  # a set_budget field left as it is


def set_budget(
    conn: Connection,
    user_id: int | None,
    *,
    monthly_usd: Decimal | float | str | None = KEEP,
    per_run_usd: Decimal | float | str | None = KEEP,
    warn_ratio: float | None = None,
    actor_id: int | None = None,
) -> dict[str, list[Any]]:
    """Set the caps of ``user_id`` (None: the global caps): a field given as None removes that
    cap, one left at ``KEEP`` stays as it is. Returns the changes, ``{field: [old, new]}``
    (as floats; for the audit log)."""
    values: dict[str, Any] = {}
    if monthly_usd is not KEEP:
        values["monthly_usd"] = parse_usd(monthly_usd, "the monthly cap")
    if per_run_usd is not KEEP:
        values["per_run_usd"] = parse_usd(per_run_usd, "the per-run cap")
    if warn_ratio is not None:
        if not 0 < warn_ratio <= 1:
            raise InputError("the warning ratio must be between 0 and 1")
        values["warn_ratio"] = float(warn_ratio)
    where = BUDGET.c.user_id.is_(None) if user_id is None else BUDGET.c.user_id == user_id
    row = conn.execute(select(BUDGET).where(where)).first()

    def plain(value: Any) -> float | None:
        return None if value is None else float(value)

    old = {f: plain(getattr(row, f)) if row is not None else None for f in values}
    changes = {f: [old.get(f), plain(v)] for f, v in values.items() if old.get(f) != plain(v)}
    if not changes:
        return {}
    stamp = {"updated_at": utcnow(), "updated_by": actor_id}
    if row is not None:
        conn.execute(update(BUDGET).where(where).values(**values, **stamp))
    else:
        conn.execute(
            BUDGET.insert().values(user_id=user_id, **{"warn_ratio": 0.8, **values, **stamp})
        )
    return changes


def status(conn: Connection, user_id: int | None) -> dict[str, Any]:
    """Caps, spend this month, held reservations and the warning flag (for the UI and CLI)."""
    since = month_start()
    uid = int(user_id or 0)
    mine, other = _caps(conn, uid, lock=False) if user_id is not None else (None, None)
    if user_id is None:
        other = conn.execute(select(BUDGET).where(BUDGET.c.user_id.is_(None))).first()
    row = mine if user_id is not None else other
    spent = _spent_month(conn, user_id, since)
    held = _reserved(conn, user_id=user_id)
    cap = _dec(row.monthly_usd) if row is not None and row.monthly_usd is not None else None
    ratio = float(row.warn_ratio) if row is not None else 0.8
    used = float((spent + held) / cap) if cap else None
    return {
        "scope": "user" if user_id is not None else "global",
        "monthly_usd": float(cap) if cap is not None else None,
        "per_run_usd": (
            float(row.per_run_usd) if row is not None and row.per_run_usd is not None else None
        ),
        "spent_usd": float(spent),
        "reserved_usd": float(held),
        "used_ratio": used,
        "warn": bool(used is not None and used >= ratio),
        "exceeded": bool(cap is not None and spent + held >= cap),
        "month_start": since.isoformat(),
        "global_monthly_usd": (
            float(other.monthly_usd)
            if user_id is not None and other is not None and other.monthly_usd is not None
            else None
        ),
    }


def notice(user_id: int, *, engine: Engine | None = None) -> tuple[str, str]:
    """(level, text) for the pages: ``"exceeded"`` when the user's or the global monthly cap is
    used up, ``"warn"`` at its warn ratio (80 % by default), else ``("", "")``. Spent counts
    what is booked plus what calls in flight hold."""
    with reading(engine) as conn:
        scopes = [("your monthly", status(conn, user_id))]
        if scopes[0][1]["global_monthly_usd"] is not None:
            scopes.append(("the team's monthly", status(conn, None)))
    for level in ("exceeded", "warn"):
        for label, info in scopes:
            if info[level] and info["monthly_usd"] is not None:
                used = info["spent_usd"] + info["reserved_usd"]
                cap = info["monthly_usd"]
                if level == "exceeded":
                    return level, (
                        f"Budget used up: {label} cap is ${cap:,.2f} and ${used:,.2f} is spent. "
                        "Live model calls are refused until an admin raises it or the month ends."
                    )
                return level, (
                    f"Budget warning: {label} cap is ${cap:,.2f}; ${used:,.2f} "
                    f"({info['used_ratio']:.0%}) is used."
                )
    return "", ""
