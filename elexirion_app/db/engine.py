"""Database engine: SQLite in WAL mode by default, PostgreSQL when ``DATABASE_URL`` is set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
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
    eng = create_engine(url)
    _ping_when_idle(eng)
    return eng


# A pooled PostgreSQL connection given back less than this long ago is handed out again without
# a ping; one idle for longer is pinged first (and replaced if the server is gone).
PING_IDLE_S = 5.0


def _ping_when_idle(eng: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for connections that sat idle in the pool for
    more than ``PING_IDLE_S``. The plain pre-ping is a round trip on every checkout, ~15 per
    API run (one per transaction), each a wait for the GIL again in a busy worker. A
    connection used a moment ago is as alive as a ping would show; if the server went away in
    between (a restart), the next statement fails as a disconnect, SQLAlchemy discards every
    connection of the pool, and the following checkouts connect anew (that one statement's
    caller gets the error, as with a restart during a statement). A failed ping of an idle
    connection raises ``DisconnectionError``: the pool drops it and checks out another (up to
    three tries), as pre-ping does."""

    @event.listens_for(eng, "checkin")
    def _given_back(_dbapi_conn: Any, entry: ConnectionPoolEntry) -> None:
        entry.info["elx_idle_since"] = time.monotonic()

    @event.listens_for(eng, "checkout")
    def _taken(dbapi_conn: Any, entry: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        since = entry.info.pop("elx_idle_since", None)
        if since is None or time.monotonic() - since <= PING_IDLE_S:
            return  # just connected, or given back a moment ago
        try:
            eng.dialect.do_ping(dbapi_conn)
        except eng.dialect.loaded_dbapi.Error as err:
            if eng.dialect.is_disconnect(err, dbapi_conn, None):
                raise exc.DisconnectionError(f"stale pooled connection: {err}") from err
            raise


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


@contextmanager
def reading(engine: Engine | None = None) -> Iterator[Connection]:
    """A connection for reads that need no transaction of their own (one statement, or
    several that need not agree with each other). On PostgreSQL it is in autocommit: no BEGIN
    before the first statement and no ROLLBACK at the end — a round trip less each, and above
    all no ROLLBACK, at which psycopg forgets every statement it had prepared on that pooled
    connection (and sends DEALLOCATE ALL): with a read block ending that way every few
    transactions, the ledger's upserts were parsed and planned again on almost every write
    (server CPU per ``ledger.record`` 3.0 ms instead of 0.6 ms, bench/README.md "api.py").
    Not for writes (each statement would commit alone). On SQLite: a plain connection."""
    eng = engine or get_engine()
    if eng.dialect.name == "postgresql":
        eng = eng.execution_options(isolation_level="AUTOCOMMIT")  # same pool, ~17 µs
    with eng.connect() as conn:
        yield conn


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
