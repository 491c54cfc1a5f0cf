"""Alembic migrations create the schema on SQLite (WAL) and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from elexirion_app.db.engine import make_engine, session_scope
from elexirion_app.services.accounts import auth

ROOT = Path(__file__).resolve().parents[3]
TABLES = {"app_user", "auth_session", "conversation", "message", "run", "step_run", "llm_call"}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _upgrade(url: str) -> None:
    alembic = Path(sys.executable).parent / "alembic"
    env = {"DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    subprocess.run([str(alembic), "upgrade", "head"], cwd=ROOT, env=env, check=True, timeout=120)


def _check_schema_and_account(url: str) -> None:
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with session_scope(engine) as s:
            user = auth.register(s, "pg@example.com", "password-1")
            token = auth.create_session(s, user.id)
        with session_scope(engine) as s:
            assert auth.user_for_token(s, token) == user
    finally:
        engine.dispose()


def test_sqlite_migration_and_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    _upgrade(url)
    _check_schema_and_account(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    admin = make_engine(PG_ADMIN)
    name = f"elx_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_migration_and_accounts(pg_url: str) -> None:
    _upgrade(pg_url)
    _check_schema_and_account(pg_url)


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """`alembic check` fails when a model changed without a migration."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    _upgrade(url)
    alembic = Path(sys.executable).parent / "alembic"
    env = {"DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [str(alembic), "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
