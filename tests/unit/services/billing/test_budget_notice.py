"""The budget banner's text (chat page): nothing without a cap, a warning at the warn ratio
(80 % by default) and a refusal notice once a cap is used up — the user's or the team's."""

from __future__ import annotations

from decimal import Decimal

from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.services.accounts import auth
from elexirion_app.services.billing import budgets, ledger


def _user(email: str) -> int:
    with session_scope() as s:
        uid = auth.register(s, email, "password-1").id
    assert uid is not None
    return uid


def _cap(user_id: int | None, monthly: str) -> None:
    with get_engine().begin() as conn:
        budgets.set_budget(conn, user_id, monthly_usd=monthly)


def _spend(user_id: int, usd: str) -> None:
    ledger.record(
        ledger.Attempt(caller="chat", provider="claude", model="m", user_id=user_id,
                       cost_usd=Decimal(usd))
    )  # fmt: skip


def test_no_cap_no_banner(db_url: str) -> None:
    uid = _user("a@example.com")
    _spend(uid, "5")
    assert budgets.notice(uid) == ("", "")


def test_under_the_warn_ratio_no_banner(db_url: str) -> None:
    uid = _user("a@example.com")
    _cap(uid, "10")
    _spend(uid, "7.99")
    assert budgets.notice(uid) == ("", "")


def test_at_eighty_percent_a_warning_with_the_numbers(db_url: str) -> None:
    uid = _user("a@example.com")
    _cap(uid, "10")
    _spend(uid, "8.5")
    level, text = budgets.notice(uid)
    assert level == "warn"
    assert "your monthly cap is $10.00" in text and "$8.50 (85%)" in text


def test_a_used_up_cap_says_calls_are_refused(db_url: str) -> None:
    uid = _user("a@example.com")
    _cap(uid, "1")
    _spend(uid, "1")
    level, text = budgets.notice(uid)
    assert level == "exceeded" and "Live model calls are refused" in text


def test_the_team_cap_counts_everyone_and_outranks_a_warning(db_url: str) -> None:
    me, other = _user("a@example.com"), _user("b@example.com")
    _cap(me, "10")
    _spend(me, "8.5")  # my own cap: a warning
    _cap(None, "20")
    _spend(other, "11.5")  # the team's: 20 of 20 used
    level, text = budgets.notice(me)
    assert level == "exceeded" and "the team's monthly cap is $20.00" in text
    assert budgets.notice(other)[0] == "exceeded"
