"""Database engine: SQLite in WAL mode by default, PostgreSQL when ``DATABASE_URL`` is set."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from elexirion_app.config import get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
T = TypeVar("T")

# Our blocking work (database, file walks) runs on this pool, not the event loop's default
# executor: Reflex's state manager writes every changed tab state through the default one, so
# turns waiting there for SQLite's single write lock held up every chat stream's flushes.
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            workers = max(1, int(os.environ.get("ELEXIRION_DB_THREADS", "4") or 4))
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="elx-db")
        return _pool


async def in_db_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn(*args, **kwargs)`` off the event loop, on our own thread pool."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


# Uploads and zip extraction can take seconds of a thread: a pool of their own, so they can
# never hold up the quick database work every event needs (the identity check above all).
_file_pool: ThreadPoolExecutor | None = None


def _file_executor() -> ThreadPoolExecutor:
    global _file_pool
    with _lock:
        if _file_pool is None:
            workers = max(1, int(os.environ.get("ELEXIRION_FILE_THREADS", "2") or 2))
            _file_pool = ThreadPoolExecutor(workers, thread_name_prefix="elx-files")
        return _file_pool


async def in_file_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run slow file work (uploads, zip extraction, workspace walks) on the file pool."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_file_executor(), call)


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


def create_all(engine: Engine | None = None) -> None:
    """Create every table (tests and throwaway databases; the app uses Alembic)."""
    from elexirion_app.db import models  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(engine or get_engine())
