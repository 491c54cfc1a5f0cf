"""``python -m elexirion_app users create`` / ``apikey create|list|revoke``: what operators see."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from elexirion_app import config
from elexirion_app.cli import main
from elexirion_app.core import secrets as server_secrets
from elexirion_app.core.errors import InvalidCredentials
from elexirion_app.db import engine as db_engine
from elexirion_app.db.engine import session_scope
from elexirion_app.services.accounts import api_keys, auth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(server_secrets.SECRET_ENV, raising=False)
    server_secrets._cached.cache_clear()
    yield
    server_secrets._cached.cache_clear()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _key_use(plain: str) -> api_keys.KeyUse | None:
    with session_scope() as s:
        return api_keys.authenticate_key(s, plain)


def test_users_create_prints_a_password_that_logs_in(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, "users", "create", "--email", "Ops@Example.com")
    assert code == 0
    (password,) = out.splitlines()
    assert len(password) >= auth.MIN_PASSWORD
    assert "ops@example.com" in err and "admin" in err  # the first account is admin
    with session_scope() as s:
        user = auth.authenticate(s, "ops@example.com", password)
    assert user.is_admin


def test_later_accounts_are_members_unless_admin_is_asked(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    passwords = {}
    for email, extra in (
        ("a@example.com", []),
        ("b@example.com", []),
        ("c@example.com", ["--admin"]),
    ):
        code, out, _ = _cli(capsys, "users", "create", "--email", email, *extra)
        assert code == 0
        passwords[email] = out.strip()
    with session_scope() as s:
        roles = {e: auth.authenticate(s, e, p).is_admin for e, p in passwords.items()}
    assert roles == {"a@example.com": True, "b@example.com": False, "c@example.com": True}
    assert len(set(passwords.values())) == 3


def test_password_stdin_is_used_and_not_printed(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    code, out, _ = _cli(capsys, "users", "create", "--email", "a@example.com", "--password-stdin")
    assert code == 0 and out == ""
    with session_scope() as s:
        assert auth.authenticate(s, "a@example.com", "correct horse battery").email
        with pytest.raises(InvalidCredentials):
            auth.authenticate(s, "a@example.com", "correct horse battery\n")


@pytest.mark.parametrize("stdin", ["short\n", "", "two\nlines-of-password\n"])
def test_a_bad_stdin_password_is_one_error_line(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, err = _cli(capsys, "users", "create", "--email", "a@example.com", "--password-stdin")
    assert (code, out) == (1, "")
    _one_error_line(err)


@pytest.mark.parametrize("email", ["a@example.com", "A@EXAMPLE.COM "])
def test_a_duplicate_account_is_one_error_line(
    db_url: str, capsys: pytest.CaptureFixture[str], email: str
) -> None:
    assert _cli(capsys, "users", "create", "--email", "a@example.com")[0] == 0
    code, out, err = _cli(capsys, "users", "create", "--email", email)
    assert (code, out) == (1, "")
    assert "already exists" in _one_error_line(err)


def test_an_invalid_email_is_one_error_line(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(capsys, "users", "create", "--email", "not-an-email")
    assert code == 1
    _one_error_line(err)


def test_apikey_create_prints_only_a_key_that_authenticates(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(capsys, "users", "create", "--email", "a@example.com")
    code, out, err = _cli(capsys, "apikey", "create", "--email", "a@example.com", "--name", "ci")
    assert code == 0
    assert out.endswith("\n") and out.count("\n") == 1
    plain = out.strip()
    assert api_keys.is_well_formed(plain) and plain not in err
    use = _key_use(plain)
    assert use is not None and use.user.email == "a@example.com"


def test_apikey_list_and_revoke(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _cli(capsys, "users", "create", "--email", "a@example.com")
    plain = _cli(capsys, "apikey", "create", "--email", "a@example.com", "--name", "ci")[1].strip()
    code, out, _ = _cli(capsys, "apikey", "list", "--email", "a@example.com", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["name"] == "ci" and row["revoked_at"] is None and plain.startswith(row["prefix"])
    code, table, _ = _cli(capsys, "apikey", "list", "--email", "a@example.com")
    assert code == 0 and "live" in table and "ci" in table and plain not in table
    code, out, _ = _cli(
        capsys, "apikey", "revoke", "--email", "a@example.com", "--id", str(row["id"])
    )
    assert code == 0
    assert _key_use(plain) is None
    (row,) = json.loads(_cli(capsys, "apikey", "list", "--email", "a@example.com", "--json")[1])
    assert row["revoked_at"] is not None


def test_apikey_errors_are_one_line_and_change_nothing(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(capsys, "users", "create", "--email", "a@example.com")
    _cli(capsys, "users", "create", "--email", "b@example.com")
    plain = _cli(capsys, "apikey", "create", "--email", "a@example.com", "--name", "ci")[1].strip()
    key_id = json.loads(_cli(capsys, "apikey", "list", "--email", "a@example.com", "--json")[1])[0][
        "id"
    ]
    cases = [
        ("apikey", "create", "--email", "nobody@example.com", "--name", "x"),
        ("apikey", "create", "--email", "a@example.com", "--name", "  "),
        ("apikey", "list", "--email", "nobody@example.com"),
        ("apikey", "revoke", "--email", "b@example.com", "--id", str(key_id)),  # not b's key
        ("apikey", "revoke", "--email", "a@example.com", "--id", "99999"),
    ]
    for argv in cases:
        code, out, err = _cli(capsys, *argv)
        assert (code, out) == (1, ""), argv
        _one_error_line(err)
    assert _key_use(plain) is not None
    assert json.loads(_cli(capsys, "apikey", "list", "--email", "b@example.com", "--json")[1]) == []


def _env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != server_secrets.SECRET_ENV}
    env.update(DATABASE_URL=url, ELEXIRION_DATA_DIR=str(data_dir))
    return env


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elexirion_app", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_in_a_process_uses_the_migrated_database_and_the_apps_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = _env(url, tmp_path)
    alembic = Path(sys.executable).parent / "alembic"
    subprocess.run([str(alembic), "upgrade", "head"], cwd=ROOT, env=env, check=True, timeout=120)
    made = _run(env, "users", "create", "--email", "ops@example.com")
    assert made.returncode == 0, made.stderr
    key = _run(env, "apikey", "create", "--email", "ops@example.com", "--name", "deploy")
    assert key.returncode == 0, key.stderr
    again = _run(env, "users", "create", "--email", "ops@example.com")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert (
        again.stderr.strip().startswith("error: ") and len(again.stderr.strip().splitlines()) == 1
    )
    # The served app reads the same settings: the password and the key work in-process.
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ELEXIRION_DATA_DIR", str(tmp_path))
    config.get_settings.cache_clear()
    try:
        with session_scope() as s:
            assert auth.authenticate(s, "ops@example.com", made.stdout.strip()).is_admin
        use = _key_use(key.stdout.strip())
        assert use is not None and use.user.email == "ops@example.com"
    finally:
        eng = db_engine._engines.pop(url, None)
        if eng is not None:
            eng.dispose()
        config.get_settings.cache_clear()


def test_a_database_without_the_schema_is_one_error_line(tmp_path: Path) -> None:
    env = _env(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    done = _run(env, "apikey", "list", "--email", "a@example.com")
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "alembic upgrade head" in line
