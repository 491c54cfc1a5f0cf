"""A scratch PostgreSQL database (127.0.0.1:5432, trust) for the tests that run on both
databases: created empty, dropped afterwards; the test is skipped where PostgreSQL is not
running."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from elexirion_app.db.engine import make_engine

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(prefix: str) -> Iterator[Engine]:
    """An engine on a new database ``<prefix>_<pid>`` (no tables), dropped on exit."""
    name = f"{prefix}_{os.getpid()}"
    admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # pragma: no cover - PostgreSQL not running here
        admin.dispose()
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    engine = make_engine(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def engine_pair(kind: str, folder: Path, prefix: str) -> Iterator[tuple[Engine, Engine]]:
    """Two empty databases of one kind ("sqlite": files in ``folder``; "postgresql": scratch
    databases ``<prefix>_a`` / ``_b``), for tests that write the same thing two ways and
    compare the tables."""
    if kind == "sqlite":
        a, b = (make_engine(f"sqlite:///{folder / f'{n}.db'}") for n in ("a", "b"))
        try:
            yield a, b
        finally:
            a.dispose()
            b.dispose()
        return
    with scratch_database(f"{prefix}_a") as a, scratch_database(f"{prefix}_b") as b:
        yield a, b
