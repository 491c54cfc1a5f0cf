"""API keys: shown once, stored as an HMAC, refused once revoked or disabled, used cheaply."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from elexirion_app.core import secrets as server_secrets
from elexirion_app.core.errors import ConfigError, InputError, NotFound
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.db.models import ApiKey, AppUser
from elexirion_app.services.accounts import api_keys

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(server_secrets.SECRET_ENV, raising=False)
    server_secrets._cached.cache_clear()
    yield
    server_secrets._cached.cache_clear()


def _user(email: str, *, active: bool = True) -> int:
    with session_scope() as s:
        user = AppUser(email=email, is_active=active)
        s.add(user)
        s.flush()
        assert user.id is not None
        return user.id


def _create(user_id: int, name: str = "ci") -> tuple[api_keys.ApiKeyView, str]:
    with session_scope() as s:
        return api_keys.create_key(s, user_id, name)


def _auth(plain: object, now: datetime | None = None) -> api_keys.KeyUse | None:
    with session_scope() as s:
        return api_keys.authenticate_key(s, plain, now=now)


def _row(key_id: int) -> ApiKey:
    with session_scope() as s:
        row = s.get(ApiKey, key_id)
        assert row is not None
        return row


def test_a_key_use_carries_its_owners_current_rate_limits(db_url: str) -> None:
    uid = _user("limits@example.com")
    _view, plain = _create(uid)
    use = _auth(plain)
    assert use is not None and (use.chat_limit, use.api_limit) == (None, None)
    with session_scope() as s:
        user = s.get(AppUser, uid)
        assert user is not None
        user.chat_limit, user.api_limit = "5/minute", "7/minute"
        s.add(user)
    use = _auth(plain)  # read again on the next call: an admin's change holds at once
    assert use is not None and (use.chat_limit, use.api_limit) == ("5/minute", "7/minute")


def test_a_created_key_authenticates_as_its_owner_and_is_listed_without_secret(
    db_url: str,
) -> None:
    uid = _user("a@example.com")
    view, plain = _create(uid, "deploy bot")
    assert plain.startswith("elx_") and len(plain) == api_keys.KEY_CHARS
    assert view.name == "deploy bot" and view.live and view.last_used_at is None
    assert plain.startswith(view.prefix) and view.display == view.prefix + "…"
    use = _auth(plain)
    assert use is not None
    assert (use.user.id, use.user.email, use.key_id) == (uid, "a@example.com", view.id)
    with session_scope() as s:
        listed = api_keys.list_keys(s, uid)
    assert [k.id for k in listed] == [view.id]
    fields = {f.name for f in dataclasses.fields(api_keys.ApiKeyView)}
    assert "lookup_hash" not in fields
    assert all(plain not in repr(v) for v in listed)


def test_each_key_is_new(db_url: str) -> None:
    uid = _user("a@example.com")
    keys = {_create(uid)[1] for _ in range(5)}
    assert len(keys) == 5


def test_the_plain_key_is_in_no_column_and_not_in_the_database_file(
    db_url: str, tmp_path: Path
) -> None:
    uid = _user("a@example.com")
    view, plain = _create(uid)
    assert _auth(plain) is not None
    secret_part = plain[api_keys.PREFIX_CHARS :]
    engine = get_engine()
    dump: list[str] = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                dump.extend(str(value) for value in row)
    joined = "\n".join(dump)
    assert view.prefix in joined  # the display prefix is kept…
    assert secret_part not in joined and plain not in joined  # …the rest of the key is not
    for path in tmp_path.glob("test.db*"):  # the file and its WAL
        assert secret_part.encode() not in path.read_bytes()


def test_another_users_key_id_is_not_found_and_left_alone(db_url: str) -> None:
    alice, bob = _user("alice@example.com"), _user("bob@example.com")
    view, plain = _create(alice)
    with pytest.raises(NotFound), session_scope() as s:
        api_keys.revoke_key(s, bob, view.id)
    with session_scope() as s:
        assert api_keys.list_keys(s, bob) == []
    assert _row(view.id).revoked_at is None
    use = _auth(plain)
    assert use is not None and use.user.id == alice


@pytest.mark.parametrize("key_id", [999, -1, "1", None, True, 1.0])
def test_revoking_an_unknown_or_odd_id_is_not_found(db_url: str, key_id: object) -> None:
    uid = _user("a@example.com")
    _create(uid)
    with pytest.raises(NotFound), session_scope() as s:
        api_keys.revoke_key(s, uid, key_id)


def test_a_revoked_key_is_refused_on_the_next_call(db_url: str) -> None:
    uid = _user("a@example.com")
    view, plain = _create(uid)
    with session_scope() as s:
        assert api_keys.authenticate_key(s, plain) is not None
        api_keys.revoke_key(s, uid, view.id)
        assert api_keys.authenticate_key(s, plain) is None  # same session, next call
    assert _auth(plain) is None
    with session_scope() as s:
        api_keys.revoke_key(s, uid, view.id)  # again: no error, no change
        (listed,) = api_keys.list_keys(s, uid)
        assert not listed.live and listed.revoked_at == _row(view.id).revoked_at
        assert api_keys.list_keys(s, uid, include_revoked=False) == []


def test_a_disabled_owner_is_refused_until_enabled_again(db_url: str) -> None:
    uid = _user("a@example.com")
    _, plain = _create(uid)
    for active, expect in ((False, False), (True, True)):
        with session_scope() as s:
            user = s.get(AppUser, uid)
            assert user is not None
            user.is_active = active
            s.add(user)
        assert (_auth(plain) is not None) is expect


def test_no_key_for_a_disabled_or_unknown_account(db_url: str) -> None:
    off = _user("off@example.com", active=False)
    with pytest.raises(InputError), session_scope() as s:
        api_keys.create_key(s, off, "x")
    with pytest.raises(NotFound), session_scope() as s:
        api_keys.create_key(s, 12345, "x")


@pytest.mark.parametrize(
    "plain",
    [
        "",
        "elx_",
        "x" * 10_000,
        "elx_" + "a" * 10_000,
        "élx_" + "a" * 43,
        "elx_" + "é" * 43,
        "elx_" + "a" * 42 + "\u202e",
        "elx_" + "a" * 42 + "=",
        "elx_" + "a" * 44,
        None,
        12345,
        b"elx_" + b"a" * 43,
    ],
)
def test_malformed_keys_are_refused(db_url: str, plain: object) -> None:
    uid = _user("a@example.com")
    _create(uid)
    assert _auth(plain) is None


def test_a_near_miss_of_a_real_key_is_refused(db_url: str) -> None:
    uid = _user("a@example.com")
    _, plain = _create(uid)
    last = "A" if plain[-1] != "A" else "B"
    for variant in (plain[:-1] + last, plain + "\n", " " + plain[1:], plain.upper()):
        assert _auth(variant) is None
    assert _auth(plain) is not None


def test_names_are_cleaned_and_bounded(db_url: str) -> None:
    uid = _user("a@example.com")
    view, _ = _create(uid, "  my\tkey\u202e\x00 one  ")
    assert view.name == "my key one"
    assert _create(uid, "n" * 100)[0].name == "n" * 100
    for bad in ("", "   ", "\u202e\x01", "n" * 101, None, 7):
        with pytest.raises(InputError), session_scope() as s:
            api_keys.create_key(s, uid, bad)  # type: ignore[arg-type]


def test_at_most_fifty_live_keys_per_user(db_url: str) -> None:
    uid, other = _user("a@example.com"), _user("b@example.com")
    views = [_create(uid, f"k{i}")[0] for i in range(api_keys.MAX_LIVE_KEYS)]
    with pytest.raises(InputError), session_scope() as s:
        api_keys.create_key(s, uid, "one too many")
    _create(other)  # the limit is per user
    with session_scope() as s:
        api_keys.revoke_key(s, uid, views[0].id)
    _create(uid, "after a revoke")
    with session_scope() as s:
        assert len(api_keys.list_keys(s, uid)) == api_keys.MAX_LIVE_KEYS + 1


def test_last_used_is_written_at_most_once_a_minute(db_url: str) -> None:
    uid = _user("a@example.com")
    view, plain = _create(uid)
    steps = [
        (T0, T0, True),
        (T0 + timedelta(seconds=30), T0, False),  # within the minute: no write
        (T0 + timedelta(seconds=59), T0, False),
        (T0 + timedelta(seconds=61), T0 + timedelta(seconds=61), False),
        (T0 + timedelta(seconds=90), T0 + timedelta(seconds=61), False),
        (T0 + timedelta(hours=3), T0 + timedelta(hours=3), False),
    ]
    for now, stored, first in steps:
        use = _auth(plain, now)
        assert use is not None and use.first_use_today is first
        assert _row(view.id).last_used_at == stored
    with session_scope() as s:
        (listed,) = api_keys.list_keys(s, uid)
    assert listed.last_used_at == T0 + timedelta(hours=3)


def test_first_use_today_is_reported_once_per_utc_day_even_within_a_minute(
    db_url: str,
) -> None:
    uid = _user("a@example.com")
    view, plain = _create(uid)
    before_midnight = datetime(2026, 3, 4, 23, 59, 40, tzinfo=UTC)
    after_midnight = before_midnight + timedelta(seconds=30)
    firsts = [
        use.first_use_today
        for now in (before_midnight, before_midnight, after_midnight, after_midnight)
        if (use := _auth(plain, now)) is not None
    ]
    assert firsts == [True, False, True, False]
    assert _row(view.id).last_used_at == after_midnight


def test_keys_are_separate_per_owner_and_per_key(db_url: str) -> None:
    alice, bob = _user("alice@example.com"), _user("bob@example.com")
    (va, pa), (vb, pb) = _create(alice), _create(bob)
    ua, ub = _auth(pa, T0), _auth(pb, T0)
    assert ua is not None and ub is not None
    assert (ua.user.id, ua.key_id, ub.user.id, ub.key_id) == (alice, va.id, bob, vb.id)
    with session_scope() as s:
        api_keys.revoke_key(s, alice, va.id)
    assert _auth(pa) is None and _auth(pb) is not None


def test_the_secret_file_is_created_once_with_mode_0600_and_reused(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / server_secrets.SECRET_FILE
    assert not path.exists()
    uid = _user("a@example.com")
    _, plain = _create(uid)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert len(first) == server_secrets.SECRET_BYTES
    server_secrets._cached.cache_clear()  # as a new process would
    assert _auth(plain) is not None
    assert server_secrets.read_or_create(path) == first == path.read_bytes()
    assert [p.name for p in tmp_path.glob(".secret.key*")] == []  # no temporary file left


def test_a_new_secret_turns_existing_keys_down(db_url: str, tmp_path: Path) -> None:
    uid = _user("a@example.com")
    _, plain = _create(uid)
    (tmp_path / server_secrets.SECRET_FILE).unlink()
    server_secrets._cached.cache_clear()
    assert _auth(plain) is None


def test_the_environment_secret_wins_and_no_file_is_written(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(server_secrets.SECRET_ENV, "s" * 40)
    uid = _user("a@example.com")
    _, plain = _create(uid)
    assert _auth(plain) is not None
    assert not (tmp_path / server_secrets.SECRET_FILE).exists()
    monkeypatch.setenv(server_secrets.SECRET_ENV, "t" * 40)
    assert _auth(plain) is None  # another secret: the stored HMAC no longer matches


def test_a_short_environment_secret_or_a_damaged_file_is_a_config_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError):
        server_secrets.server_secret(tmp_path, "short")
    path = tmp_path / "damaged" / server_secrets.SECRET_FILE
    path.parent.mkdir()
    path.write_bytes(b"x" * 5)
    with pytest.raises(ConfigError) as err:
        server_secrets.read_or_create(path)
    assert "secret" in err.value.user_message
    assert path.read_bytes() == b"x" * 5  # never overwritten


def test_the_secret_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "u" / server_secrets.SECRET_FILE
        server_secrets.read_or_create(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
