"""A scratch PostgreSQL database (127.0.0.1:5432, trust) for the tests that run on both
databases: created empty, dropped afterwards; the test is skipped where PostgreSQL is not
running."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text
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
def engine_pair(
    kind: str, folder: Path, prefix: str, users: Sequence[int] = ()
) -> Iterator[tuple[Engine, Engine]]:
    """Two databases of one kind ("sqlite": files in ``folder``; "postgresql": scratch
    databases ``<prefix>_a`` / ``_b``) with every table and the accounts ``users`` (ids;
    email u<id>@x.io), for tests that write the same thing two ways and compare the tables."""
    from elexirion_app.db.engine import create_all
    from elexirion_app.db.models import AppUser

    def ready(a: Engine, b: Engine) -> tuple[Engine, Engine]:
        for eng in (a, b):
            create_all(eng)
            if users:
                with eng.begin() as conn:
                    conn.execute(
                        insert(AppUser.__table__),  # type: ignore[attr-defined]
                        [{"id": i, "email": f"u{i}@x.io"} for i in users],
                    )
        return a, b

    if kind == "sqlite":
        a, b = (make_engine(f"sqlite:///{folder / f'{n}.db'}") for n in ("a", "b"))
        try:
            yield ready(a, b)
        finally:
            a.dispose()
            b.dispose()
        return
    with scratch_database(f"{prefix}_a") as a, scratch_database(f"{prefix}_b") as b:
        yield ready(a, b)


def table_contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted (on SQLite each value's stored text and storage class too,
    not just the value): to compare two databases written two ways."""
    from sqlmodel import SQLModel

    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            cols = [c.name for c in table.c]
            if engine.dialect.name == "sqlite":
                listed = ", ".join(f"quote({c}), typeof({c})" for c in cols)
                rows = conn.execute(text(f"SELECT {listed} FROM {table.name}")).all()
            else:
                rows = conn.execute(select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def unpipelined(conn: Any, *, commit: bool = False) -> Any:
    """Stands in for ``driver_sql.pipelined`` in the reference runs of the tests that compare
    the driver statements with ``Connection.execute``: execute waits for each statement, and
    the ``begin()`` block commits."""
    from contextlib import nullcontext

    return nullcontext()
