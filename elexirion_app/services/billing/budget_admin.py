"""Admins' budgets (the "Budgets" panel of /admin): every account's caps and this month's spend,
the global caps, and changes to them.

CONTRACT:
- Both functions take the acting user's id and check *in the database* that they are an active
  admin (``accounts.admin.require_admin``: ``PermissionDenied`` otherwise).
- Spend and reservations are the figures enforcement uses (``budgets``: this month's booked
  cost from the ledger's rollups, plus what calls in flight hold), read in two grouped
  queries, not per user.
- ``change`` replaces the subject's caps with what the form holds (empty: no cap), writes one
  ``budget_changed`` audit row (actor, subject, address, old → new) in the same transaction,
  and nothing when nothing changed.
- Functions are synchronous (database): call them through ``in_db_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from elexirion_app.core.errors import InputError, NotFound
from elexirion_app.db.models import AppUser, utcnow
from elexirion_app.services.accounts import admin, audit
from elexirion_app.services.billing import budgets

GLOBAL = "global"
MAX_ADDRESS = 64


@dataclass(frozen=True)
class BudgetRow:
    user_id: int | None  # None: the global caps (everyone's spend together)
    email: str
    monthly_usd: float | None
    per_run_usd: float | None
    warn_ratio: float
    spent_usd: float
    reserved_usd: float

    @property
    def used_ratio(self) -> float | None:
        if self.monthly_usd is None:
            return None
        if self.monthly_usd == 0:
            return 1.0  # a zero cap is used up from the start
        return (self.spent_usd + self.reserved_usd) / self.monthly_usd


def _sums(session: Session, table: Any, amount: Any, *where: Any) -> dict[int, float]:
    rows = session.execute(
        select(table.c.user_id, func.coalesce(func.sum(amount), 0))
        .where(*where)
        .group_by(table.c.user_id)
    ).all()
    return {int(uid or 0): float(total) for uid, total in rows}


def list_budgets(session: Session, admin_id: object) -> list[BudgetRow]:
    """The global row first, then every account (by email) with its caps and spend."""
    admin.require_admin(session, admin_id)
    since = budgets.month_start()
    spent = _sums(
        session, budgets.ROLLUP, budgets.ROLLUP.c.cost_usd, budgets.ROLLUP.c.hour >= since
    )
    res = budgets.RESERVATION
    held = _sums(
        session,
        res,
        res.c.amount_usd,
        res.c.settled_at.is_(None),
        res.c.created_at > utcnow() - budgets.RESERVATION_TTL,
    )
    caps = {row.user_id: row for row in session.execute(select(budgets.BUDGET)).all()}

    def row(user_id: int | None, email: str, spent_usd: float, held_usd: float) -> BudgetRow:
        cap = caps.get(user_id)
        return BudgetRow(
            user_id=user_id,
            email=email,
            monthly_usd=None if cap is None or cap.monthly_usd is None else float(cap.monthly_usd),
            per_run_usd=None if cap is None or cap.per_run_usd is None else float(cap.per_run_usd),
            warn_ratio=float(cap.warn_ratio) if cap is not None else 0.8,
            spent_usd=spent_usd,
            reserved_usd=held_usd,
        )

    table = AppUser.__table__  # type: ignore[attr-defined]
    users = session.execute(
        select(table.c.id, table.c.email).order_by(table.c.email).limit(admin.MAX_USERS)
    ).all()
    out = [row(None, "", sum(spent.values()), sum(held.values()))]
    out += [row(uid, email, spent.get(uid, 0.0), held.get(uid, 0.0)) for uid, email in users]
    return out


def _subject(session: Session, user_id: object) -> tuple[int | None, str]:
    if user_id == GLOBAL:
        return None, GLOBAL
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise InputError("Choose an account (or the global caps).")
    user = session.get(AppUser, user_id)
    if user is None:
        raise NotFound("no such user")
    return user_id, user.email


def _cap(value: object, what: str) -> Decimal | None:
    """A cap typed in the form ("" = none; "$2.50" accepted), parsed by ``budgets``' rule."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool) or len(str(value)) > 20:
        raise InputError(f"The {what} is a number of dollars, like 25 or 2.50.")
    return budgets.parse_usd(str(value).strip().lstrip("$"), f"the {what}")


def change(
    session: Session,
    admin_id: object,
    user_id: object,
    monthly_usd: object,
    per_run_usd: object,
    *,
    address: str = "",
) -> dict[str, list[Any]]:
    """Set the caps of ``user_id`` (an account id, or ``"global"``); empty = no cap.

    Returns the changes ``{field: [old, new]}`` ({} when nothing changed)."""
    actor = admin.require_admin(session, admin_id)
    subject_id, target = _subject(session, user_id)
    monthly = _cap(monthly_usd, "monthly cap")
    per_run = _cap(per_run_usd, "per-run cap")
    changes = budgets.set_budget(
        session.connection(),
        subject_id,
        monthly_usd=monthly,
        per_run_usd=per_run,
        actor_id=actor.id,
    )
    if changes:
        audit.record(
            session,
            "budget_changed",
            actor_id=actor.id,
            subject_id=subject_id,
            address=address[:MAX_ADDRESS] if isinstance(address, str) else "",
            target=target,
            detail={f: {"old": old, "new": new} for f, (old, new) in changes.items()},
        )
        session.flush()
    return changes
