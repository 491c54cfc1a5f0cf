"""Admins' budgets (/admin "Budgets", services/billing/budget_admin) and the CLI's ``budget
set``: the role checked in the database, every change audited with old and new values, a cap
left out of ``budget set`` kept (it used to be wiped), bad figures refused plainly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import Session, select

from elexirion_app import cli
from elexirion_app.core.errors import InputError, NotFound, PermissionDenied
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.db.models import AuditEvent
from elexirion_app.services.accounts import auth
from elexirion_app.services.billing import budget_admin, budgets, ledger


def _user(email: str) -> int:
    with session_scope() as s:
        uid = auth.register(s, email, "password-1").id  # the first account is admin
    assert uid is not None
    return uid


def _audits() -> list[AuditEvent]:
    with Session(get_engine()) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == "budget_changed")).all())


def _caps(user_id: int | None) -> dict[str, object]:
    with get_engine().connect() as conn:
        info = budgets.status(conn, user_id)
    return {k: info[k] for k in ("monthly_usd", "per_run_usd")}


def test_members_can_neither_list_nor_change(db_url: str) -> None:
    _user("admin@example.com")
    member = _user("member@example.com")
    with session_scope() as s, pytest.raises(PermissionDenied):
        budget_admin.list_budgets(s, member)
    with session_scope() as s, pytest.raises(PermissionDenied):
        budget_admin.change(s, member, member, "1000", "")
    with session_scope() as s, pytest.raises(PermissionDenied):
        budget_admin.change(s, "1", "global", "0", "")  # a forged id is not an admin
    assert _caps(member) == {"monthly_usd": None, "per_run_usd": None} and _audits() == []


def test_an_admin_sets_caps_audited_once_with_old_and_new(db_url: str) -> None:
    boss = _user("admin@example.com")
    member = _user("member@example.com")
    with session_scope() as s:
        changes = budget_admin.change(s, boss, member, "25", "$2.50", address="10.0.0.1")
    assert changes == {"monthly_usd": [None, 25.0], "per_run_usd": [None, 2.5]}
    assert _caps(member) == {"monthly_usd": 25.0, "per_run_usd": 2.5}
    with session_scope() as s:
        assert budget_admin.change(s, boss, member, "25.00", "2.5") == {}  # nothing new
    with session_scope() as s:
        budget_admin.change(s, boss, member, "", "2.5")  # the monthly cap removed
    assert _caps(member) == {"monthly_usd": None, "per_run_usd": 2.5}
    first, second = _audits()
    assert (first.actor_id, first.subject_id, first.address) == (boss, member, "10.0.0.1")
    assert first.target == "member@example.com"
    assert second.detail == {"monthly_usd": {"old": 25.0, "new": None}}


def test_the_global_caps_and_the_listing(db_url: str) -> None:
    boss = _user("admin@example.com")
    member = _user("member@example.com")
    ledger.record(
        ledger.Attempt(caller="chat", provider="claude", model="m", user_id=member,
                       cost_usd=Decimal("1.25"))
    )  # fmt: skip
    budgets.reserve(member, None, Decimal("0.5"))  # no cap: nothing held
    with session_scope() as s:
        budget_admin.change(s, boss, "global", "10", "")
        budget_admin.change(s, boss, member, "2", "")
    held = budgets.reserve(member, None, Decimal("0.25"))
    assert held is not None
    with session_scope() as s:
        rows = budget_admin.list_budgets(s, boss)
    everyone, *accounts = rows
    assert everyone.user_id is None and everyone.monthly_usd == 10.0
    assert everyone.spent_usd == pytest.approx(1.25) and everyone.reserved_usd == 0.25
    by_email = {r.email: r for r in accounts}
    m = by_email["member@example.com"]
    assert (m.monthly_usd, m.spent_usd, m.reserved_usd) == (2.0, 1.25, 0.25)
    assert m.used_ratio == pytest.approx(0.75)
    assert by_email["admin@example.com"].spent_usd == 0


@pytest.mark.parametrize(
    "subject, monthly, error",
    [
        ("global", "abc", InputError),
        ("global", "-1", InputError),
        ("global", "1e99", InputError),
        ("global", "NaN", InputError),
        ("global", True, InputError),
        ("global", {"x": 1}, InputError),
        ("global", "9" * 30, InputError),
        ("nobody", "1", InputError),
        (True, "1", InputError),
        (10**6, "1", NotFound),
    ],
)
def test_bad_input_is_refused_plainly(
    db_url: str, subject: object, monthly: object, error: type[Exception]
) -> None:
    boss = _user("admin@example.com")
    with session_scope() as s, pytest.raises(error):
        budget_admin.change(s, boss, subject, monthly, "")
    assert _audits() == []


def test_cli_budget_set_keeps_what_it_is_not_given_and_is_audited(db_url: str) -> None:
    uid = _user("ops@example.com")
    email = ["--email", "ops@example.com"]
    assert cli.main(["budget", "set", *email, "--monthly-usd", "5", "--per-run-usd", "1"]) == 0
    assert cli.main(["budget", "set", *email, "--monthly-usd", "7"]) == 0  # per-run kept
    assert _caps(uid) == {"monthly_usd": 7.0, "per_run_usd": 1.0}
    assert cli.main(["budget", "set", *email, "--per-run-usd", "none"]) == 0
    assert _caps(uid) == {"monthly_usd": 7.0, "per_run_usd": None}
    rows = _audits()
    assert len(rows) == 3 and all(r.detail.get("via") == "cli" for r in rows)
    assert rows[1].detail["monthly_usd"] == {"old": 5.0, "new": 7.0}


def test_cli_refuses_a_cap_too_large_to_store_plainly(db_url: str, capsys: object) -> None:
    """'1e99' used to reach Decimal.quantize and end in a traceback (InvalidOperation)."""
    _user("ops@example.com")
    assert cli.main(["budget", "set", "--global", "--monthly-usd", "1e99"]) == 1
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "must be at most 1,000,000,000 dollars" in err and "Traceback" not in err
