"""What an admin may do to accounts: list them, change a role, disable / re-enable, set limits.

CONTRACT:
- Every function takes the acting user's id and first checks *in the database* that this
  user is an active admin (``PermissionDenied`` otherwise): a flag held by a page or passed by
  a caller is never trusted.
- The last active admin cannot be demoted or disabled, and an admin cannot disable themself:
  the platform always keeps someone who can manage it.
- Disabling revokes the user's live sessions in the same transaction (their open pages are
  logged out on their next event); their API keys are refused while the account is inactive
  (``api_keys.authenticate_key`` checks ``is_active`` on every call).
- Every change writes one audit row (``role_changed`` / ``user_disabled`` / ``user_enabled`` /
  ``limits_changed``: actor, subject, address, old → new) in the caller's transaction; a
  request that changes nothing writes nothing.
- Changes of admins and roles are serialised (a write lock taken first on SQLite, the active
  admins' rows locked in id order on PostgreSQL), so two admins demoting each other at once
  cannot leave none.
- Functions are synchronous (database): call them through ``in_db_thread``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from elexirion_app.core.errors import InputError, NotFound, PermissionDenied
from elexirion_app.db.models import ApiKey, AppUser, AuthSession, utcnow
from elexirion_app.services.accounts import audit, rate_limits

log = logging.getLogger(__name__)

MAX_USERS = 500
MAX_QUERY = 100
MAX_ADDRESS = 64
MAX_EMAIL = 320


@dataclass(frozen=True)
class UserRow:
    """One account as the admin page shows it (never a hash)."""

    id: int
    email: str
    display_name: str
    is_admin: bool
    is_active: bool
    created_at: datetime
    chat_limit: str | None
    api_limit: str | None
    live_keys: int
    last_login: datetime | None

    @property
    def role(self) -> str:
        return "admin" if self.is_admin else "member"


@dataclass(frozen=True)
class AuditFilter:
    """The audit page's filters, validated (``parse_filter``)."""

    action: str | None = None
    outcome: str | None = None
    email: str | None = None
    address: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _int_id(value: object, what: str = "user") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**62:
        raise NotFound(f"no such {what}")
    return value


def require_admin(session: Session, actor_id: object) -> AppUser:
    """The acting user's row if it is an active admin; PermissionDenied otherwise."""
    if not isinstance(actor_id, int) or isinstance(actor_id, bool):
        raise PermissionDenied()
    user = session.get(AppUser, actor_id)
    if user is None or not user.is_active or not user.is_admin:
        raise PermissionDenied()
    return user


def _serialise(session: Session) -> None:
    """Take the lock that orders admin changes before anything is read."""
    if session.get_bind().dialect.name == "sqlite":
        # A write first: the transaction holds SQLite's one write lock from here on, so the
        # count of admins read below cannot change before this transaction commits.
        session.execute(
            update(AppUser)
            .where(col(AppUser.id) == -1)
            .values(is_admin=False)
            .execution_options(synchronize_session=False)
        )
        # (no row matches; the statement still takes the lock)
        return
    session.exec(
        select(AppUser.id)
        .where(col(AppUser.is_admin).is_(True), col(AppUser.is_active).is_(True))
        .order_by(col(AppUser.id))
        .with_for_update()
    ).all()


def _active_admins(session: Session) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(AppUser)
            .where(col(AppUser.is_admin).is_(True), col(AppUser.is_active).is_(True))
        ).one()
    )


def _subject(session: Session, user_id: object) -> AppUser:
    uid = _int_id(user_id)
    user = session.exec(select(AppUser).where(col(AppUser.id) == uid).with_for_update()).first()
    if user is None:
        raise NotFound("no such user")
    return user


def _address(value: object) -> str:
    return value[:MAX_ADDRESS] if isinstance(value, str) else ""


def _rows(session: Session, users: list[AppUser]) -> list[UserRow]:
    ids = [u.id for u in users if u.id is not None]
    if not ids:
        return []
    keys = dict(
        session.exec(  # type: ignore[arg-type]
            select(ApiKey.user_id, func.count())
            .where(col(ApiKey.user_id).in_(ids), col(ApiKey.revoked_at).is_(None))
            .group_by(col(ApiKey.user_id))
        ).all()
    )
    logins = dict(
        session.exec(  # type: ignore[arg-type]
            select(AuthSession.user_id, func.max(AuthSession.created_at))
            .where(col(AuthSession.user_id).in_(ids))
            .group_by(col(AuthSession.user_id))
        ).all()
    )
    out = []
    for u in users:
        assert u.id is not None
        out.append(
            UserRow(
                id=u.id,
                email=u.email,
                display_name=u.display_name,
                is_admin=u.is_admin,
                is_active=u.is_active,
                created_at=u.created_at,
                chat_limit=u.chat_limit,
                api_limit=u.api_limit,
                live_keys=int(keys.get(u.id, 0)),
                last_login=logins.get(u.id),
            )
        )
    return out


def list_users(
    session: Session, admin_id: object, *, query: object = "", limit: int = MAX_USERS
) -> list[UserRow]:
    """Accounts in order of creation (the first one first), filtered by email or name.

    ``last_login`` is the start of the user's newest session (password, OIDC or registration
    all start one)."""
    require_admin(session, admin_id)
    q = query.strip().lower()[:MAX_QUERY] if isinstance(query, str) else ""
    stmt = select(AppUser)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            col(AppUser.email).ilike(like, escape="\\")
            | col(AppUser.display_name).ilike(like, escape="\\")
        )
    limit = max(1, min(int(limit), MAX_USERS))
    users = list(session.exec(stmt.order_by(col(AppUser.id)).limit(limit)).all())
    return _rows(session, users)


def _one(session: Session, user: AppUser) -> UserRow:
    return _rows(session, [user])[0]


def set_role(
    session: Session, admin_id: object, user_id: object, is_admin: object, *, address: str = ""
) -> UserRow:
    """Make ``user_id`` an admin or a member."""
    if not isinstance(is_admin, bool):
        raise InputError("The role is admin or member.")
    _serialise(session)
    actor = require_admin(session, admin_id)
    user = _subject(session, user_id)
    if user.is_admin == is_admin:
        return _one(session, user)
    if not is_admin and user.is_active and _active_admins(session) <= 1:
        raise InputError("This is the last active admin: make someone else admin first.")
    old, new = ("admin", "member") if user.is_admin else ("member", "admin")
    user.is_admin = is_admin
    session.add(user)
    audit.record(
        session,
        "role_changed",
        actor_id=actor.id,
        subject_id=user.id,
        address=_address(address),
        target=user.email,
        detail={"old": old, "new": new},
    )
    session.flush()
    log.info("admin %s made user %s %s", actor.id, user.id, new)
    return _one(session, user)


def set_active(
    session: Session, admin_id: object, user_id: object, active: object, *, address: str = ""
) -> UserRow:
    """Disable (revoking every live session at once) or re-enable an account."""
    if not isinstance(active, bool):
        raise InputError("An account is enabled or disabled.")
    _serialise(session)
    actor = require_admin(session, admin_id)
    user = _subject(session, user_id)
    if user.is_active == active:
        return _one(session, user)
    if not active:
        if user.id == actor.id:
            raise InputError("You cannot disable your own account.")
        if user.is_admin and _active_admins(session) <= 1:
            raise InputError("This is the last active admin: make someone else admin first.")
    user.is_active = active
    session.add(user)
    revoked = 0
    if not active:
        result = session.execute(
            update(AuthSession)
            .where(col(AuthSession.user_id) == user.id, col(AuthSession.revoked_at).is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        revoked = int(result.rowcount or 0)  # type: ignore[attr-defined]
    detail: dict[str, Any] = {"old": "disabled" if active else "active"}
    detail["new"] = "active" if active else "disabled"
    if not active:
        detail["sessions_revoked"] = revoked
    audit.record(
        session,
        "user_enabled" if active else "user_disabled",
        actor_id=actor.id,
        subject_id=user.id,
        address=_address(address),
        target=user.email,
        detail=detail,
    )
    session.flush()
    log.info("admin %s %s user %s", actor.id, "enabled" if active else "disabled", user.id)
    return _one(session, user)


def set_limits(
    session: Session,
    admin_id: object,
    user_id: object,
    chat_limit: object,
    api_limit: object,
    *,
    address: str = "",
) -> UserRow:
    """Set a user's own chat and API rate limits ("" or None: the server's default).

    Each is checked with ``rate_limits.check_rule`` (InputError naming the field)."""
    actor = require_admin(session, admin_id)
    rules: dict[str, str | None] = {}
    for field, text, label in (("chat_limit", chat_limit, "chat"), ("api_limit", api_limit, "API")):
        try:
            rules[field] = rate_limits.check_rule(text)
        except InputError as exc:
            raise InputError(f"The {label} limit: {exc.user_message}") from None
    user = _subject(session, user_id)
    changes = {
        field: [getattr(user, field), new]
        for field, new in rules.items()
        if getattr(user, field) != new
    }
    if not changes:
        return _one(session, user)
    for field, (_old, new) in changes.items():
        setattr(user, field, new)
    session.add(user)
    audit.record(
        session,
        "limits_changed",
        actor_id=actor.id,
        subject_id=user.id,
        address=_address(address),
        target=user.email,
        detail={field: {"old": old, "new": new} for field, (old, new) in changes.items()},
    )
    session.flush()
    log.info("admin %s changed the limits of user %s", actor.id, user.id)
    return _one(session, user)


def _day(value: object, what: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 10:
        raise InputError(f"The {what} date is a day like 2026-03-04.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"The {what} date is a day like 2026-03-04.") from None


def _choice(value: object, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"Pick a known {what}.")
    return value


def parse_filter(
    *,
    action: object = "",
    outcome: object = "",
    email: object = "",
    address: object = "",
    since: object = "",
    until: object = "",
) -> AuditFilter:
    """The audit filters from form text; InputError for anything else. Dates are UTC days,
    ``until`` inclusive."""
    mail = email.strip().lower() if isinstance(email, str) else None
    if email not in (None, "") and (not mail or len(mail) > MAX_EMAIL):
        raise InputError("The user filter is an email address.")
    addr = address.strip() if isinstance(address, str) else None
    if address not in (None, "") and (addr is None or len(addr) > MAX_ADDRESS):
        raise InputError(f"The address filter has at most {MAX_ADDRESS} characters.")
    first, last = _day(since, "from"), _day(until, "to")
    if first and last and last < first:
        raise InputError("The 'to' date is before the 'from' date.")
    return AuditFilter(
        action=_choice(action, audit.ACTIONS, "action"),
        outcome=_choice(outcome, audit.OUTCOMES, "outcome"),
        email=mail or None,
        address=addr or None,
        since=datetime.combine(first, time.min, UTC) if first else None,
        until=datetime.combine(last + timedelta(days=1), time.min, UTC) if last else None,
    )


def list_audit(
    session: Session,
    admin_id: object,
    filters: AuditFilter,
    *,
    before_id: object = None,
    limit: int = 50,
) -> list[audit.AuditView]:
    """The audit log for an admin, newest first; ``before_id`` pages to older events.

    The email filter matches events by the account, on it, or naming it (a failed login of
    that email has no actor)."""
    require_admin(session, admin_id)
    before = None
    if before_id is not None:
        before = _int_id(before_id, "audit event")
    involving = None
    if filters.email:
        found = session.exec(select(AppUser.id).where(col(AppUser.email) == filters.email)).first()
        involving = (found, filters.email)
    return audit.list_events(
        session,
        action=filters.action,
        outcome=filters.outcome,
        involving=involving,
        address=filters.address,
        since=filters.since,
        until=filters.until,
        before_id=before,
        limit=limit,
    )
