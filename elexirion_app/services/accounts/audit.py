"""The audit log: who did what, when, from which address — append-only.

CONTRACT:
- ``record`` adds one row in the caller's session (it commits with the work it describes, so
  an event is never logged for work that was rolled back). ``record_now`` is the same in a
  session of its own, for events with no other write (a failed login, a refused key).
- ``ACTIONS`` is the closed list of action names; an unknown one is a programming error
  (ValueError), so a typo cannot hide events from the page's filters.
- ``list_events`` filters by action, outcome, actor, address and time, newest first, keyset
  paginated (``before_id``); it never loads more than ``limit`` rows (capped at 500).
- Never a password, a key or a prompt in a row: ``target`` is an email, a pipeline name, a key's
  display prefix; ``detail`` holds small facts (old and new role, a limit, a version number).
- Functions are synchronous (database): call them through ``in_db_thread``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, AuditEvent, utcnow

log = logging.getLogger(__name__)
_INSERT = insert(AuditEvent.__table__)  # type: ignore[attr-defined]

ACTIONS = (
    "login",  # outcome ok | failed | locked
    "logout",
    "register",
    "oidc_login",  # outcome ok | failed | refused
    "oidc_link",
    "key_created",
    "key_used",  # first use of a key per UTC day
    "key_revoked",
    "key_refused",  # a revoked / unknown key presented to the API
    "pipeline_saved",
    "pipeline_run",
    "pipeline_deleted",
    "budget_changed",  # an admin (or the CLI) set or removed a user's or the global caps
    "role_changed",
    "user_disabled",
    "user_enabled",
    "limits_changed",
    "user_created",  # by an operator (CLI) or an admin
    "rate_limited",
)
OUTCOMES = ("ok", "failed", "locked", "refused")
MAX_LIST = 500
_MAX_TARGET = 320
_MAX_ADDRESS = 64


@dataclass(frozen=True)
class AuditView:
    id: int
    created_at: datetime
    action: str
    outcome: str
    actor_id: int | None
    actor_email: str
    subject_id: int | None
    address: str
    target: str
    detail: dict[str, Any]


def _row(
    action: str,
    outcome: str,
    actor_id: int | None,
    subject_id: int | None,
    address: str,
    target: str,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    """The columns of one event, checked (unknown action or outcome: ValueError) and logged."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    log.info("audit %s %s actor=%s subject=%s", action, outcome, actor_id, subject_id)
    return {
        "action": action,
        "outcome": outcome,
        "actor_id": actor_id,
        "subject_id": subject_id,
        "address": (address or "")[:_MAX_ADDRESS],
        "target": (target or "")[:_MAX_TARGET],
        "detail": dict(detail or {}),
    }


def record(
    session: Session,
    action: str,
    *,
    outcome: str = "ok",
    actor_id: int | None = None,
    subject_id: int | None = None,
    address: str = "",
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one event to ``session`` (committed with the caller's work)."""
    session.add(AuditEvent(**_row(action, outcome, actor_id, subject_id, address, target, detail)))


def record_on(
    conn: Connection,
    action: str,
    *,
    outcome: str = "ok",
    actor_id: int | None = None,
    subject_id: int | None = None,
    address: str = "",
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """``record`` as one INSERT on ``conn``, in its transaction (the run recorder writes on a
    Core connection: no ORM session and flush for one row)."""
    row = _row(action, outcome, actor_id, subject_id, address, target, detail)
    conn.execute(_INSERT, {"created_at": utcnow(), **row})


def record_now(action: str, **fields: Any) -> None:
    """``record`` in a session of its own, committed now."""
    with session_scope() as session:
        record(session, action, **fields)


def list_events(
    session: Session,
    *,
    action: str | None = None,
    outcome: str | None = None,
    actor_id: int | None = None,
    involving: tuple[int | None, str] | None = None,
    address: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditView]:
    """Events matching every filter given, newest first (at most ``limit``, ≤ ``MAX_LIST``).

    ``involving`` = (user id or None, email): events by that user, on them, or naming the
    email as target (a failed login of an account has no actor)."""
    query = select(AuditEvent, AppUser.email).join(
        AppUser, col(AppUser.id) == col(AuditEvent.actor_id), isouter=True
    )
    if action:
        query = query.where(col(AuditEvent.action) == action)
    if outcome:
        query = query.where(col(AuditEvent.outcome) == outcome)
    if actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == actor_id)
    if involving is not None:
        user_id, email = involving
        about = col(AuditEvent.target) == email
        if user_id is not None:
            about = or_(
                about, col(AuditEvent.actor_id) == user_id, col(AuditEvent.subject_id) == user_id
            )
        query = query.where(about)
    if address:
        query = query.where(col(AuditEvent.address) == address)
    if since is not None:
        query = query.where(col(AuditEvent.created_at) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.created_at) < until)
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    limit = max(1, min(int(limit), MAX_LIST))
    rows = session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)).all()
    return [
        AuditView(
            id=event.id or 0,
            created_at=event.created_at,
            action=event.action,
            outcome=event.outcome,
            actor_id=event.actor_id,
            actor_email=email or "",
            subject_id=event.subject_id,
            address=event.address,
            target=event.target,
            detail=dict(event.detail or {}),
        )
        for event, email in rows
    ]
