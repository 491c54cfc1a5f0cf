"""/admin: accounts (disable / re-enable, role, per-user limits), budgets and the audit log.

Every handler is a public endpoint that any tab may call: each one passes the user of the
event's session cookie to ``services.accounts.admin``, which checks *in the database* that
this user is an active admin. Anyone else gets ``PermissionDenied``: the state is emptied and
the page shows only that message — no email, no row. Ids and flags from the page are checked
there too (an unknown id is NotFound; a flag must be a real boolean).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx

from elexirion_app.core.errors import ElexirionError, InputError, PermissionDenied
from elexirion_app.core.money import usd
from elexirion_app.db.engine import in_session
from elexirion_app.services.accounts import admin, audit, rate_limits
from elexirion_app.services.billing import budget_admin
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id
from elexirion_app.web.state.settings import stamp

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE = 50
MAX_DETAIL = 240
FILTER_FIELDS = ("action", "outcome", "email", "address", "since", "until")
ANY = "any"  # the filter selects' "no filter" item (a Radix select item cannot be "")


@dataclasses.dataclass
class UserRow:
    id: int = 0
    email: str = ""
    name: str = ""
    is_admin: bool = False
    active: bool = True
    created: str = ""
    chat_limit: str = ""
    api_limit: str = ""
    live_keys: int = 0
    last_login: str = ""
    is_me: bool = False


@dataclasses.dataclass
class EventRow:
    id: int = 0
    when: str = ""
    action: str = ""
    outcome: str = ""
    actor: str = ""
    target: str = ""
    address: str = ""
    detail: str = ""


def _user_row(u: admin.UserRow, me: int) -> UserRow:
    return UserRow(
        id=u.id,
        email=u.email,
        name=u.display_name,
        is_admin=u.is_admin,
        active=u.is_active,
        created=stamp(u.created_at),
        chat_limit=u.chat_limit or "",
        api_limit=u.api_limit or "",
        live_keys=u.live_keys,
        last_login=stamp(u.last_login) or "never",
        is_me=u.id == me,
    )


def _value(v: Any) -> str:
    return "default" if v is None or v == "" else str(v)


def describe(detail: dict[str, Any]) -> str:
    """An audit row's detail as one line: ``old → new`` for changes, ``k=v`` otherwise."""
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict) and set(value) == {"old", "new"}:
            parts.append(f"{key}: {_value(value['old'])} → {_value(value['new'])}")
        elif key == "old" and "new" in detail:
            parts.append(f"{_value(value)} → {_value(detail['new'])}")
        elif key != "new":
            parts.append(f"{key}={value}")
    return "; ".join(parts)[:MAX_DETAIL]


def _event_row(e: audit.AuditView) -> EventRow:
    return EventRow(
        id=e.id,
        when=e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        action=e.action,
        outcome=e.outcome,
        actor=e.actor_email,
        target=e.target,
        address=e.address,
        detail=describe(e.detail),
    )


@dataclasses.dataclass
class BudgetView:
    key: str = ""  # "global" or the account id
    who: str = ""
    monthly: str = ""  # the caps as the form shows them ("" = none)
    per_run: str = ""
    spent: str = ""
    used: str = ""  # "85 %" of the monthly cap, or ""
    percent: int = 0  # for the bar, 0-100
    level: str = ""  # "", "warn" or "exceeded"


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _budget_view(b: budget_admin.BudgetRow) -> BudgetView:
    ratio = b.used_ratio
    level = ""
    if ratio is not None:
        level = "exceeded" if ratio >= 1 else ("warn" if ratio >= b.warn_ratio else "")
    return BudgetView(
        key=budget_admin.GLOBAL if b.user_id is None else str(b.user_id),
        who="Everyone (global)" if b.user_id is None else b.email,
        monthly=_money(b.monthly_usd),
        per_run=_money(b.per_run_usd),
        spent=usd(b.spent_usd) + (f" + {usd(b.reserved_usd)} held" if b.reserved_usd else ""),
        used="" if ratio is None else f"{ratio:.0%}",
        percent=0 if ratio is None else max(0, min(100, round(ratio * 100))),
        level=level,
    )


def _user_id_arg(value: Any) -> int:
    """A user id from a form field (text) or an event argument (a number)."""
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InputError("That account is not valid.")


class AdminState(rx.State):
    allowed: bool = False
    users: list[UserRow] = []
    budgets: list[BudgetView] = []
    events: list[EventRow] = []
    has_older: bool = False
    actions: list[str] = list(audit.ACTIONS)
    outcomes: list[str] = list(audit.OUTCOMES)
    chat_default: str = ""
    api_default: str = ""
    filter_summary: str = ""
    message: str = ""
    error: str = ""
    _filter: admin.AuditFilter = admin.AuditFilter()

    async def _work(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn(session, *args)`` in a database thread. A refusal becomes ``self.error``; a
        permission refusal also empties the page."""

        try:
            return await in_session(fn, *args, **kwargs)
        except PermissionDenied as exc:
            self._deny(exc.user_message)
            return None
        except ElexirionError as exc:
            self.error = exc.user_message
            return None

    def _deny(self, message: str) -> None:
        self.allowed, self.users, self.events, self.has_older = False, [], [], False
        self.message, self.filter_summary = "", ""
        self._filter = admin.AuditFilter()
        self.error = message

    async def _actor(self) -> int | None:
        """The event's user; None (state emptied) when logged out."""
        user_id = await current_user_id(self)
        if user_id is None:
            self._deny("")
        else:
            self.message, self.error = "", ""
        return user_id

    def _address(self) -> str:
        return str(self.router.session.client_ip or "")

    async def _users(self, me: int) -> None:
        rows = await self._work(admin.list_users, me)
        if rows is not None:
            self.allowed = True
            self.users = [_user_row(u, me) for u in rows]

    async def _budgets(self, me: int) -> None:
        rows = await self._work(budget_admin.list_budgets, me)
        if rows is not None:
            self.budgets = [_budget_view(b) for b in rows]

    async def _events(self, me: int, *, older: bool = False) -> None:
        before = self.events[-1].id if older and self.events else None
        rows = await self._work(
            admin.list_audit, me, self._filter, before_id=before, limit=PAGE + 1
        )
        if rows is None:
            return
        page = [_event_row(e) for e in rows[:PAGE]]
        self.events = [*self.events, *page] if older else page
        self.has_older = len(rows) > PAGE

    @rx.event
    async def load(self) -> Any:
        me = await self._actor()
        if me is None:
            return rx.redirect(routes.LOGIN)
        self._filter, self.filter_summary = admin.AuditFilter(), ""
        self.chat_default = rate_limits.default_rule("chat_user")
        self.api_default = rate_limits.default_rule("api_user")
        await self._users(me)
        if self.allowed:
            await self._budgets(me)
            await self._events(me)
        return None

    async def _change(self, fn: Callable[..., admin.UserRow], *args: Any) -> Any:
        me = await self._actor()
        if me is None:
            return rx.redirect(routes.LOGIN)
        row = await self._work(fn, me, *args, address=self._address())
        if row is not None:
            self.message = f"Saved: {row.email}."
            await self._users(me)
            await self._events(me)
        return None

    @rx.event
    async def set_role(self, user_id: Any, is_admin: Any) -> Any:
        return await self._change(admin.set_role, user_id, is_admin)

    @rx.event
    async def set_active(self, user_id: Any, active: Any) -> Any:
        return await self._change(admin.set_active, user_id, active)

    @rx.event
    async def save_limits(self, form_data: Any) -> Any:
        data = form_data if isinstance(form_data, dict) else {}
        try:
            user_id = _user_id_arg(data.get("user_id"))
        except InputError as exc:
            if await self._actor() is not None:
                self.error = exc.user_message
            return None
        return await self._change(
            admin.set_limits, user_id, data.get("chat_limit"), data.get("api_limit")
        )

    @rx.event
    async def save_budget(self, form_data: Any) -> Any:
        """Set one account's (or the global) monthly and per-run caps; empty: no cap."""
        me = await self._actor()
        if me is None:
            return rx.redirect(routes.LOGIN)
        data = form_data if isinstance(form_data, dict) else {}
        key = data.get("subject")
        try:
            subject: Any = key if key == budget_admin.GLOBAL else _user_id_arg(key)
        except InputError as exc:
            self.error = exc.user_message
            return None
        changes = await self._work(
            budget_admin.change,
            me,
            subject,
            data.get("monthly_usd"),
            data.get("per_run_usd"),
            address=self._address(),
        )
        if changes is None:
            return None
        self.message = "Budget saved." if changes else "No change."
        await self._budgets(me)
        await self._events(me)
        return None

    @rx.event
    async def filter_audit(self, form_data: Any) -> Any:
        me = await self._actor()
        if me is None:
            return rx.redirect(routes.LOGIN)
        data = form_data if isinstance(form_data, dict) else {}
        fields = {k: data.get(k, "") for k in FILTER_FIELDS}
        fields.update({k: "" for k in ("action", "outcome") if fields[k] == ANY})
        try:
            self._filter = admin.parse_filter(**fields)
        except InputError as exc:
            self.error = exc.user_message
            return None
        f = self._filter
        shown = [
            ("action", f.action),
            ("outcome", f.outcome),
            ("user", f.email),
            ("address", f.address),
            ("from", data.get("since") if f.since else None),
            ("to", data.get("until") if f.until else None),
        ]
        self.filter_summary = ", ".join(f"{k} {v}" for k, v in shown if v)
        await self._events(me)
        return None

    @rx.event
    async def older(self) -> Any:
        me = await self._actor()
        if me is None:
            return rx.redirect(routes.LOGIN)
        await self._events(me, older=True)
        return None
