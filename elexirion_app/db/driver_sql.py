"""Hot write statements compiled once and sent straight to the database driver.

The ledger books every provider attempt with ~10 statements of ~50 columns each. Through
``Connection.execute`` each of them pays SQLAlchemy's per-execution work — the statement's
cache key (a nested tuple of every column and clause, hashed on every call), the compiled
cache lookup, ``construct_params`` — and on PostgreSQL psycopg then parses the
``%(name)s`` placeholders out of the SQL text again on every call (it caches that only for
statements under 4,096 characters and 50 parameters; ours are longer). Measured per attempt
(/tmp-free micro-benchmark in bench/README.md, "api.py"): that overhead was ~5/6 of the
ledger's CPU on SQLite and half of it on PostgreSQL.

``DriverStatement`` compiles a Core statement ONCE for a dialect and a set of parameter names
with positional placeholders (``?`` on SQLite, ``$1`` on PostgreSQL), keeps the SQL text, the
parameter order and the columns' bind processors (the same conversions ``execute`` applies:
SQLite's datetimes as text, decimals as floats, …), and ``run(conn, rows)`` executes the rows
on the connection's driver cursor (psycopg's ``RawCursor`` on PostgreSQL: no placeholder
parsing): same connection, same transaction; driver errors are raised as SQLAlchemy's
(``IntegrityError`` …), as ``execute`` would. SQLAlchemy's cursor events are not fired (the app
registers none). Only for statements whose every value is a bound parameter given in each row:
a column default that SQLAlchemy would fill in is refused when the statement is built.

``run`` returns the driver's row count (an UPDATE's matched rows). ``fetch(conn, row)`` runs a
statement that returns rows (a SELECT, an UPDATE … RETURNING) and converts each value with its
column's result processor as ``execute`` would (SQLite's JSON text parsed, its numbers as
``Decimal`` for a ``Numeric``, its datetime text parsed; the processors are looked up once, from
the first execution's cursor description, as SQLAlchemy does per result), giving plain tuples.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from operator import itemgetter
from typing import Any

from psycopg import RawCursor
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

__all__ = ["DriverStatement", "fetch", "pipelined", "run"]

Build = Callable[[], Any]
# The statement an error inside ``pipelined`` is reported with (psycopg reports it where it
# notices it, which may be a later statement's execute or the pipeline's end).
PIPELINED = "(a statement of a pipelined batch)"


def _positional(dialect: Dialect) -> Dialect:
    """The dialect to compile with: PostgreSQL's with ``$n`` placeholders (what psycopg's
    ``RawCursor`` takes); SQLite's as it is (``?``)."""
    if dialect.name == "postgresql":
        return PGDialect_psycopg(paramstyle="numeric_dollar")
    if dialect.name == "sqlite":
        return dialect
    raise NotImplementedError(f"no driver statements for the {dialect.name} dialect")


def _processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The conversion ``execute`` applies to a value of ``type_`` (adapted to the dialect
    first: a generic ``DateTime`` has none, SQLite's ``DATETIME`` writes its text form)."""
    impl = type_.dialect_impl(dialect)
    fn: Callable[[Any], Any] | None = impl.bind_processor(dialect)
    if fn is not None and dialect.name == "sqlite":
        return _sqlite_datetime(impl, dialect) or fn
    return fn


def _sqlite_datetime(impl: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLite's ``DATETIME`` text (its default storage format, after a ``TypeDecorator``'s own
    conversion such as sqlmodel's ``UTCDateTime``) without the ``%``-format of a dict of seven
    fields per value: ``isoformat(" ", "microseconds")`` cut before any offset is the same
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text. Anything but a plain ``datetime`` goes to SQLAlchemy's
    own processor. None: not such a column."""
    decorated = isinstance(impl, TypeDecorator)
    inner = impl.impl_instance if decorated else impl
    if (
        type(inner) is not SQLITE_DATETIME
        or inner._storage_format != SQLITE_DATETIME._storage_format
    ):
        return None
    text = inner.bind_processor(dialect)
    if text is None:
        return None
    param = impl.process_bind_param if decorated and impl._has_bind_processor else None

    def process(value: Any) -> Any:
        if param is not None:
            value = param(value, dialect)
        if type(value) is datetime:
            return value.isoformat(" ", "microseconds")[:26]
        return text(value)

    return process


class DriverStatement:
    """One statement, compiled for ``dialect`` with ``keys`` as its parameters."""

    def __init__(self, dialect: Dialect, statement: Any, keys: Sequence[str]) -> None:
        target = _positional(dialect)
        compiled = statement.compile(dialect=target, column_keys=list(keys))
        names = list(compiled.positiontup or ())
        missing = sorted(set(names) - set(keys))
        if missing or not names:
            raise ValueError(f"driver statement needs values for {missing} (defaults are not run)")
        self.sql = str(compiled)
        self.dialect = dialect
        processors = [_processor(compiled.binds[n].type, target) for n in names]
        self._index = [(i, fn) for i, fn in enumerate(processors) if fn is not None]
        self._get = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        self._result_types = [c.type for c in compiled._result_columns]
        self._results: list[tuple[int, Callable[[Any], Any]]] | None = None

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        values = self._get(row)
        if not self._index:
            return tuple(values)
        out = list(values)
        for i, fn in self._index:
            out[i] = fn(out[i])
        return tuple(out)

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute for ``rows`` (one execute, or executemany); the driver's row count."""
        if not rows:
            return 0
        return self._execute(conn, [self.params(r) for r in rows], fetch=False)[0]

    def fetch(self, conn: Connection, row: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute for ``row``; the rows it returns, each value through its result processor."""
        got = self._execute(conn, [self.params(row)], fetch=True)[1]
        procs = self._results
        if not procs or not got:
            return got
        out = []
        for values in got:
            converted = list(values)
            for i, fn in procs:
                converted[i] = fn(converted[i])
            out.append(tuple(converted))
        return out

    def _execute(
        self, conn: Connection, params: list[tuple[Any, ...]], *, fetch: bool
    ) -> tuple[int, list[tuple[Any, ...]]]:
        raw: Any = conn.connection.driver_connection
        dbapi = self.dialect.loaded_dbapi
        got: list[tuple[Any, ...]] = []
        try:
            cursor = RawCursor(raw) if self.dialect.name == "postgresql" else raw.cursor()
            try:
                if len(params) == 1:
                    cursor.execute(self.sql, params[0])
                else:
                    cursor.executemany(self.sql, params)
                if fetch:
                    got = list(cursor.fetchall())
                    if self._results is None:
                        self._results = self._result_processors(cursor.description)
                count = int(cursor.rowcount)
            finally:
                cursor.close()
        except dbapi.Error as err:
            if self.dialect.name == "postgresql" and raw.pgconn.pipeline_status:
                # In a pipeline the error may be an earlier statement's, reported here.
                raise DBAPIError.instance(
                    PIPELINED, None, err, dbapi.Error, dialect=self.dialect
                ) from err
            raise DBAPIError.instance(
                self.sql, params, err, dbapi.Error, dialect=self.dialect
            ) from err
        return count, got

    def _result_processors(self, description: Any) -> list[tuple[int, Callable[[Any], Any]]]:
        """Each result column's processor (``execute``'s, for the driver's column type code)."""
        if len(description) != len(self._result_types):
            raise ValueError(
                f"driver statement returns {len(description)} columns, not "
                f"{len(self._result_types)}: {self.sql[:80]}"
            )
        procs = []
        for i, (type_, column) in enumerate(zip(self._result_types, description, strict=True)):
            fn = type_._cached_result_processor(self.dialect, column[1])
            if fn is not None:
                procs.append((i, fn))
        return procs


_cache: dict[tuple[str, Hashable, tuple[str, ...]], DriverStatement] = {}
_lock = threading.Lock()


def _statement(
    conn: Connection, name: Hashable, build: Build, keys: tuple[str, ...]
) -> DriverStatement:
    key = (conn.dialect.name, name, keys)
    stmt = _cache.get(key)
    if stmt is None:
        with _lock:
            stmt = _cache.get(key)
            if stmt is None:
                stmt = _cache[key] = DriverStatement(conn.dialect, build(), keys)
    return stmt


def run(conn: Connection, name: str, build: Build, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run the statement ``build()`` (built once per dialect, ``name`` and row keys) for ``rows``
    (all with the same keys) inside ``conn``'s transaction; the driver's row count."""
    if not rows:
        return 0
    return _statement(conn, name, build, tuple(rows[0])).run(conn, rows)


def fetch(
    conn: Connection, name: Hashable, build: Build, row: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows the statement ``build()`` (built once per dialect, ``name`` and ``row``'s keys)
    returns for ``row``, on ``conn`` (in its transaction, if one is open). ``name``: a string,
    or any hashable key that identifies the statement's shape (the dashboard's)."""
    return _statement(conn, name, build, tuple(row)).fetch(conn, row)


@contextmanager
def pipelined(conn: Connection, *, commit: bool = False) -> Iterator[None]:
    """On PostgreSQL, the driver statements run inside go out in psycopg's pipeline mode: sent
    without waiting for each result, one round trip (the sync at the exit) for all of them
    instead of one each, in the same transaction and order. Only for statements whose results
    are not read inside (``run`` of writes: their row counts are not known until the exit). An
    error of any of them is raised at the exit, as SQLAlchemy's (``IntegrityError`` …), and
    the statements after it are not applied (the transaction is then failed, as it would be
    without the pipeline). No ``Connection.execute`` inside: after a failed statement
    SQLAlchemy's result handling raises ``ResourceClosedError`` instead of the error (and a
    statement that returns rows would wait for the whole batch anyway). Inside a pipelined
    block another one adds nothing (no sync of its own).

    ``commit=True``: the block is the end of the transaction (``conn`` in an ``engine.begin()``
    block, nothing run on it after this one): its COMMIT goes out with the statements, in the
    same round trip, so the row locks they take (the ledger's rollup rows, which concurrent
    writers of the same user and hour wait for) are held for the server's work only, not for
    one more round trip and the wait of this thread for the GIL in a busy worker. The
    ``begin()`` block's own commit then finds the transaction ended and sends nothing. If a
    statement fails, the COMMIT is skipped with the rest and the block raises: the ``begin()``
    block rolls back, as without the pipeline. On SQLite: nothing changes (the ``begin()``
    block commits)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    raw: Any = conn.connection.driver_connection
    if raw.pgconn.pipeline_status:  # already pipelined: one sync, at the outer block's exit
        if commit:
            raise RuntimeError("pipelined(commit=True) inside another pipelined block")
        yield
        return
    dbapi = conn.dialect.loaded_dbapi
    try:
        with raw.pipeline():
            yield
            if commit:
                with raw.cursor() as cursor:
                    cursor.execute("COMMIT", prepare=False)
    except dbapi.Error as err:
        raise DBAPIError.instance(PIPELINED, None, err, dbapi.Error, dialect=conn.dialect) from err
