"""Admin actions: checked against the database, never leaving the platform without an admin,
audited in the same transaction, and refused to anyone else."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import col, func, select

from elexirion_app.core import secrets as server_secrets
from elexirion_app.core.errors import InputError, NotFound, PermissionDenied
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, AuditEvent, AuthSession
from elexirion_app.services.accounts import admin, api_keys, audit, auth


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(server_secrets.SECRET_ENV, raising=False)
    server_secrets._cached.cache_clear()
    yield
    server_secrets._cached.cache_clear()


def _user(email: str, *, is_admin: bool = False, active: bool = True) -> int:
    with session_scope() as s:
        user = AppUser(email=email, is_admin=is_admin, is_active=active)
        s.add(user)
        s.flush()
        assert user.id is not None
        return user.id


def _do(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with session_scope() as s:
        return fn(s, *args, **kwargs)


def _get(user_id: int) -> AppUser:
    with session_scope() as s:
        user = s.get(AppUser, user_id)
        assert user is not None
        return user


def _events(action: str | None = None) -> list[AuditEvent]:
    with session_scope() as s:
        query = select(AuditEvent).order_by(col(AuditEvent.id))
        if action:
            query = query.where(AuditEvent.action == action)
        return list(s.exec(query).all())


def _snapshot() -> list[tuple[Any, ...]]:
    with session_scope() as s:
        users = [
            (u.id, u.is_admin, u.is_active, u.chat_limit, u.api_limit)
            for u in s.exec(select(AppUser).order_by(col(AppUser.id))).all()
        ]
        sessions = s.exec(
            select(func.count())
            .select_from(AuthSession)
            .where(col(AuthSession.revoked_at).is_(None))
        ).one()
        events = s.exec(select(func.count()).select_from(AuditEvent)).one()
    return [*users, ("sessions", sessions), ("events", events)]


@pytest.fixture
def team(db_url: str) -> dict[str, int]:
    return {
        "admin": _user("admin@example.com", is_admin=True),
        "member": _user("member@example.com"),
        "other": _user("other@example.com"),
    }


MUTATIONS: list[tuple[str, Callable[[int, int], tuple[Any, ...]]]] = [
    ("promote", lambda actor, subject: (admin.set_role, actor, subject, True)),
    ("demote", lambda actor, subject: (admin.set_role, actor, subject, False)),
    ("disable", lambda actor, subject: (admin.set_active, actor, subject, False)),
    ("limits", lambda actor, subject: (admin.set_limits, actor, subject, "1/day", "1/day")),
    ("list", lambda actor, subject: (admin.list_users, actor)),
    ("audit", lambda actor, subject: (admin.list_audit, actor, admin.AuditFilter())),
]


@pytest.mark.parametrize(("label", "call"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_anyone_but_an_active_admin_is_refused_and_changes_nothing(
    team: dict[str, int], label: str, call: Callable[[int, int], tuple[Any, ...]]
) -> None:
    fallen = _user("fallen@example.com", is_admin=True, active=False)
    with session_scope() as s:
        auth.create_session(s, team["admin"])
    before = _snapshot()
    for actor in (team["member"], fallen, 999_999, True, "1", None, -1):
        fn, *args = call(actor, team["admin"])  # type: ignore[arg-type]
        with pytest.raises(PermissionDenied):
            _do(fn, *args)
    assert _snapshot() == before


def test_list_users_shows_role_state_limits_live_keys_and_last_login(
    team: dict[str, int],
) -> None:
    with session_scope() as s:
        api_keys.create_key(s, team["member"], "ci")
        _view, _ = api_keys.create_key(s, team["member"], "old")
    _do(api_keys.revoke_key, team["member"], _view.id)
    with session_scope() as s:
        auth.create_session(s, team["member"])
    _do(admin.set_limits, team["admin"], team["member"], "10/minute", "")
    rows = {r.email: r for r in _do(admin.list_users, team["admin"])}
    assert list(rows) == ["admin@example.com", "member@example.com", "other@example.com"]
    member = rows["member@example.com"]
    assert (member.role, member.is_active, member.live_keys) == ("member", True, 1)
    assert (member.chat_limit, member.api_limit) == ("10/minute", None)
    assert member.last_login is not None
    assert rows["other@example.com"].last_login is None
    assert rows["admin@example.com"].role == "admin"
    found = _do(admin.list_users, team["admin"], query="MEMB")
    assert [r.email for r in found] == ["member@example.com"]
    assert _do(admin.list_users, team["admin"], query="%") == []


def test_role_changes_are_audited_and_the_last_admin_stays(team: dict[str, int]) -> None:
    row = _do(admin.set_role, team["admin"], team["member"], True, address="10.0.0.7")
    assert row.is_admin and _get(team["member"]).is_admin
    (event,) = _events("role_changed")
    assert (event.actor_id, event.subject_id, event.address) == (
        team["admin"],
        team["member"],
        "10.0.0.7",
    )
    assert (
        event.detail == {"old": "member", "new": "admin"} and event.target == "member@example.com"
    )
    # Two admins: one may step down; then the remaining one may not.
    _do(admin.set_role, team["member"], team["admin"], False)
    with pytest.raises(InputError, match="last active admin"):
        _do(admin.set_role, team["member"], team["member"], False)
    assert _get(team["member"]).is_admin and not _get(team["admin"]).is_admin
    # Asking for the role a user already has writes nothing.
    count = len(_events())
    _do(admin.set_role, team["member"], team["other"], False)
    assert len(_events()) == count


def test_disabling_revokes_sessions_refuses_keys_and_reenabling_does_not_revive_them(
    team: dict[str, int],
) -> None:
    with session_scope() as s:
        token = auth.create_session(s, team["member"])
        _view, plain = api_keys.create_key(s, team["member"], "ci")
    _do(admin.set_active, team["admin"], team["member"], False, address="10.0.0.8")
    assert not _get(team["member"]).is_active
    assert _do(auth.user_for_token, token) is None
    assert _do(api_keys.authenticate_key, plain) is None
    (event,) = _events("user_disabled")
    assert event.detail == {"old": "active", "new": "disabled", "sessions_revoked": 1}
    assert (event.actor_id, event.subject_id) == (team["admin"], team["member"])
    with session_scope() as s:
        alive = s.exec(
            select(func.count())
            .select_from(AuthSession)
            .where(AuthSession.user_id == team["member"], col(AuthSession.revoked_at).is_(None))
        ).one()
    assert alive == 0
    _do(admin.set_active, team["admin"], team["member"], True)
    assert _get(team["member"]).is_active
    assert _do(auth.user_for_token, token) is None  # the old session stays revoked
    assert _do(api_keys.authenticate_key, plain) is not None  # the key works again
    assert [e.detail for e in _events("user_enabled")] == [{"old": "disabled", "new": "active"}]


def test_an_admin_cannot_disable_themself(team: dict[str, int]) -> None:
    _do(admin.set_role, team["admin"], team["member"], True)
    before = _snapshot()
    with pytest.raises(InputError, match="your own account"):
        _do(admin.set_active, team["admin"], team["admin"], False)
    assert _snapshot() == before


def test_limits_are_validated_stored_and_audited(team: dict[str, int]) -> None:
    before = _snapshot()
    for chat, api in [("lots", ""), ("", "0/minute"), ("x" * 500, ""), (5, ""), ("", ["1/day"])]:
        with pytest.raises(InputError) as err:
            _do(admin.set_limits, team["admin"], team["member"], chat, api)
        assert "limit" in err.value.user_message
    assert _snapshot() == before
    row = _do(admin.set_limits, team["admin"], team["member"], " 5/minute ; 50/day ", "100/hour")
    assert (row.chat_limit, row.api_limit) == ("5/minute;50/day", "100/hour")
    (event,) = _events("limits_changed")
    assert event.detail == {
        "chat_limit": {"old": None, "new": "5/minute;50/day"},
        "api_limit": {"old": None, "new": "100/hour"},
    }
    _do(admin.set_limits, team["admin"], team["member"], "5/minute;50/day", "100/hour")
    assert len(_events("limits_changed")) == 1  # unchanged: no row
    row = _do(admin.set_limits, team["admin"], team["member"], "", None)
    assert (row.chat_limit, row.api_limit) == (None, None)


def test_unknown_or_forged_subjects_are_not_found(team: dict[str, int]) -> None:
    before = _snapshot()
    for subject in (999_999, True, "2", None, 10**30, -3):
        with pytest.raises(NotFound):
            _do(admin.set_role, team["admin"], subject, True)
        with pytest.raises(NotFound):
            _do(admin.set_active, team["admin"], subject, False)
    for bad in ("yes", 1, None):
        with pytest.raises(InputError):
            _do(admin.set_role, team["admin"], team["member"], bad)
        with pytest.raises(InputError):
            _do(admin.set_active, team["admin"], team["member"], bad)
    assert _snapshot() == before


@pytest.fixture
def pg_team(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[dict[str, int]]:
    """The same team in a throwaway PostgreSQL database (skipped when none is reachable)."""
    from elexirion_app import config
    from elexirion_app.db import engine as db_engine

    server = db_engine.make_engine("postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"elx_test_{uuid.uuid4().hex[:10]}"
    try:
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ELEXIRION_DATA_DIR", str(tmp_path))
    config.get_settings.cache_clear()
    db_engine.create_all(db_engine.get_engine(url))
    try:
        yield {
            "admin": _user("admin@example.com", is_admin=True),
            "member": _user("member@example.com"),
        }
    finally:
        eng = db_engine._engines.pop(url, None)
        if eng is not None:
            eng.dispose()
        config.get_settings.cache_clear()
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_admins_demoting_each_other_at_once_leave_one(
    database: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = request.getfixturevalue("team" if database == "sqlite" else "pg_team")
    _do(admin.set_role, team["admin"], team["member"], True)
    counted = admin._active_admins

    def slow_count(session: Any) -> int:
        n = counted(session)
        time.sleep(0.3)  # both would read "2 admins" here without the lock
        return n

    monkeypatch.setattr(admin, "_active_admins", slow_count)
    outcomes: list[str] = []

    def demote(actor: int, subject: int) -> None:
        try:
            _do(admin.set_role, actor, subject, False)
            outcomes.append("ok")
        except (InputError, PermissionDenied) as exc:
            outcomes.append(type(exc).__name__)

    threads = [
        threading.Thread(target=demote, args=(team["admin"], team["member"])),
        threading.Thread(target=demote, args=(team["member"], team["admin"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outcomes) == 2 and outcomes.count("ok") == 1, outcomes
    admins = [uid for uid in (team["admin"], team["member"]) if _get(uid).is_admin]
    assert len(admins) == 1


def test_key_creation_and_revocation_are_audited_with_the_prefix(team: dict[str, int]) -> None:
    with session_scope() as s:
        view, plain = api_keys.create_key(s, team["member"], "deploy", address="10.1.1.1")
    _do(api_keys.revoke_key, team["member"], view.id, address="10.1.1.2")
    _do(api_keys.revoke_key, team["member"], view.id)  # again: no second row
    created, revoked = _events("key_created"), _events("key_revoked")
    assert len(created) == 1 and len(revoked) == 1
    assert created[0].target == view.display and revoked[0].target == view.display
    assert (created[0].address, revoked[0].address) == ("10.1.1.1", "10.1.1.2")
    assert created[0].actor_id == team["member"]
    for event in (*created, *revoked):
        assert plain not in str(event.detail) and plain not in event.target
    with pytest.raises(NotFound):
        _do(api_keys.revoke_key, team["other"], view.id)
    assert len(_events("key_revoked")) == 1


def test_audit_filters_by_action_outcome_email_address_days_and_pages(
    team: dict[str, int],
) -> None:
    with session_scope() as s:
        audit.record(s, "login", actor_id=team["member"], address="1.1.1.1", target="member@x")
        audit.record(s, "login", outcome="failed", address="2.2.2.2", target="member@example.com")
        audit.record(s, "login", outcome="failed", address="2.2.2.2", target="nobody@example.com")
        audit.record(s, "logout", actor_id=team["other"], address="3.3.3.3")
    _do(admin.set_role, team["admin"], team["member"], True, address="4.4.4.4")

    def listed(**fields: Any) -> list[tuple[str, str, str]]:
        views = _do(admin.list_audit, team["admin"], admin.parse_filter(**fields))
        return [(v.action, v.outcome, v.address) for v in views]

    assert listed(action="login", outcome="failed") == [
        ("login", "failed", "2.2.2.2"),
        ("login", "failed", "2.2.2.2"),
    ]
    # By the account, on it, or a failed login naming its email.
    assert listed(email=" Member@Example.com ") == [
        ("role_changed", "ok", "4.4.4.4"),
        ("login", "failed", "2.2.2.2"),
        ("login", "ok", "1.1.1.1"),
    ]
    assert listed(email="ghost@example.com") == []
    assert listed(address="3.3.3.3") == [("logout", "ok", "3.3.3.3")]
    today = datetime.now(UTC).date()
    assert len(listed(since=today.isoformat(), until=today.isoformat())) == 5
    assert listed(until=(today - timedelta(days=1)).isoformat()) == []
    page1 = _do(admin.list_audit, team["admin"], admin.AuditFilter(), limit=2)
    page2 = _do(admin.list_audit, team["admin"], admin.AuditFilter(), before_id=page1[-1].id)
    assert len(page1) == 2 and len(page2) == 3
    assert {v.id for v in page1}.isdisjoint(v.id for v in page2)
    with pytest.raises(NotFound):
        _do(admin.list_audit, team["admin"], admin.AuditFilter(), before_id="5; drop table")


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "drop_table"},
        {"action": 5},
        {"outcome": "maybe"},
        {"since": "yesterday"},
        {"until": "2026-02-30"},
        {"since": "2026-03-05", "until": "2026-03-04"},
        {"email": "x" * 400},
        {"email": ["a@b.c"]},
        {"address": "1" * 100},
    ],
)
def test_bad_audit_filters_are_clear_errors(fields: dict[str, Any]) -> None:
    with pytest.raises(InputError) as err:
        admin.parse_filter(**fields)
    assert err.value.user_message


def test_operator_cli_user_creation_is_audited(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from elexirion_app.cli import main

    assert main(["users", "create", "--email", "Ops@Example.com", "--admin"]) == 0
    password = capsys.readouterr().out.strip()
    (event,) = _events("user_created")
    assert event.target == "ops@example.com" and event.detail == {"role": "admin", "via": "cli"}
    assert password not in str(event.detail)
    assert main(["users", "create", "--email", "ops@example.com"]) == 1  # duplicate
    assert len(_events("user_created")) == 1
