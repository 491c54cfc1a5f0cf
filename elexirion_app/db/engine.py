"""Database engine: SQLite in WAL mode by default, PostgreSQL when ``DATABASE_URL`` is set."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from elexirion_app.config import get_settings
from elexirion_app.core.threads import WorkPool

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
T = TypeVar("T")

# Quick database work (every event's identity check, chat loads, saves) and slow file work
# (uploads, zip extraction) on pools of their own: see ``core/threads``.
DB_POOL = WorkPool("elx-db", "ELEXIRION_DB_THREADS", 4)
FILE_POOL = WorkPool("elx-files", "ELEXIRION_FILE_THREADS", 2)
in_db_thread = DB_POOL.run
in_file_thread = FILE_POOL.run


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    return create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (nothing half-written)."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def in_session(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(session, *args, **kwargs)`` in one transaction (``session_scope``) on the database
    pool: what the pages' handlers use for their service calls."""

    def job() -> T:
        with session_scope() as session:
            return fn(session, *args, **kwargs)

    return await in_db_thread(job)


def create_all(engine: Engine | None = None) -> None:
    """Create every table (tests and throwaway databases; the app uses Alembic)."""
    from elexirion_app.db import models  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(engine or get_engine())
