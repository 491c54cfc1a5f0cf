from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from elexirion_app.core.errors import Conflict, InputError, InvalidCredentials
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, AuthSession
from elexirion_app.services.accounts import auth


def test_password_hash_is_argon2_salted_and_verifies() -> None:
    h1 = auth.hash_password("correct horse battery")
    h2 = auth.hash_password("correct horse battery")
    assert h1.startswith("$argon2id$")
    assert h1 != h2
    assert auth.verify_password(h1, "correct horse battery")
    assert not auth.verify_password(h1, "correct horse batterx")
    assert not auth.verify_password("not-a-hash", "x")


def test_first_account_is_admin_and_later_ones_are_not(db_url: str) -> None:
    with session_scope() as s:
        first = auth.register(s, "Alice@Example.com", "password-1")
    with session_scope() as s:
        second = auth.register(s, "bob@example.com", "password-2")
    assert first.is_admin and first.email == "alice@example.com"
    assert not second.is_admin


def test_duplicate_registration_is_refused_and_writes_nothing(db_url: str) -> None:
    with session_scope() as s:
        auth.register(s, "a@example.com", "password-1")
    with pytest.raises(Conflict), session_scope() as s:
        auth.register(s, "A@EXAMPLE.com ", "password-2")
    with session_scope() as s:
        assert len(s.exec(select(AppUser)).all()) == 1


@pytest.mark.parametrize(
    ("email", "password"),
    [("not-an-email", "password-1"), ("a@example.com", "short"), ("a@example.com", "x" * 2000)],
)
def test_bad_registration_input_gives_a_clear_error(db_url: str, email: str, password: str) -> None:
    with pytest.raises(InputError) as err, session_scope() as s:
        auth.register(s, email, password)
    assert err.value.user_message
    with session_scope() as s:
        assert s.exec(select(AppUser)).all() == []


def test_wrong_password_and_unknown_email_give_the_same_error(db_url: str) -> None:
    with session_scope() as s:
        auth.register(s, "a@example.com", "password-1")
    with pytest.raises(InvalidCredentials) as wrong, session_scope() as s:
        auth.authenticate(s, "a@example.com", "password-2")
    with pytest.raises(InvalidCredentials) as unknown, session_scope() as s:
        auth.authenticate(s, "nobody@example.com", "password-1")
    assert wrong.value.user_message == unknown.value.user_message == "Wrong email or password."


def test_session_tokens_are_random_stored_hashed_and_revocable(db_url: str) -> None:
    with session_scope() as s:
        user = auth.register(s, "a@example.com", "password-1")
        t1 = auth.create_session(s, user.id)
        t2 = auth.create_session(s, user.id)
    assert t1 != t2 and len(t1) >= 40
    with session_scope() as s:
        stored = [row.token_hash for row in s.exec(select(AuthSession)).all()]
        assert t1 not in stored and auth.hash_token(t1) in stored
        assert auth.user_for_token(s, t1) == user
        assert auth.user_for_token(s, "forged-token") is None
        assert auth.user_for_token(s, "") is None
        auth.revoke_session(s, t1)
    with session_scope() as s:
        assert auth.user_for_token(s, t1) is None
        assert auth.user_for_token(s, t2) == user


def test_expired_session_is_rejected(db_url: str) -> None:
    with session_scope() as s:
        user = auth.register(s, "a@example.com", "password-1")
        token = auth.create_session(s, user.id)
        row = s.exec(select(AuthSession)).one()
        row.expires_at = row.expires_at - timedelta(days=30)
        s.add(row)
    with session_scope() as s:
        assert auth.user_for_token(s, token) is None
