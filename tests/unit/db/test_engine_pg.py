"""The PostgreSQL engine's pool. Connections are pinged only after sitting idle
(``engine.PING_IDLE_S``): one given back a moment ago is handed out again as it is; an idle
one whose server process is gone is replaced before anyone uses it; a recently used one that
died fails one statement as a disconnect and the pool then connects anew (SQLAlchemy's own
recovery). Reads through ``engine.reading`` run in autocommit and keep the connection's
prepared statements, which a read block ending in ROLLBACK throws away."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from elexirion_app.db import driver_sql
from elexirion_app.db import engine as engine_mod
from tests.support.scratch_pg import PG_ADMIN, scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture()
def pg() -> Iterator[Engine]:
    with scratch_database("elx_test_ping") as eng:
        yield eng


@pytest.fixture()
def pings(pg: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pings ``pg``'s pool sends (the dialect's ``do_ping``)."""
    sent: list[int] = []
    real = pg.dialect.do_ping

    def counted(dbapi_conn: object) -> bool:
        sent.append(1)
        return real(dbapi_conn)

    monkeypatch.setattr(pg.dialect, "do_ping", counted)
    return sent


def _backend_pid(eng: Engine) -> int:
    with eng.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = engine_mod.make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        admin.dispose()


def test_a_connection_given_back_a_moment_ago_is_not_pinged(pg: Engine, pings: list[int]) -> None:
    first = _backend_pid(pg)
    for _ in range(5):
        assert _backend_pid(pg) == first  # the same pooled connection every time
    assert pings == []


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(
    pg: Engine, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(pg)
    monkeypatch.setattr(engine_mod, "PING_IDLE_S", -1.0)  # everything counts as idle now
    assert _backend_pid(pg) == first  # pinged, alive: kept
    assert len(pings) == 1
    _terminate(first)
    second = _backend_pid(pg)  # the ping finds it dead: a fresh connection, no error
    assert second != first
    assert len(pings) == 2


def test_a_recently_used_connection_that_died_fails_once_then_the_pool_recovers(
    pg: Engine, pings: list[int]
) -> None:
    first = _backend_pid(pg)
    _terminate(first)
    with pytest.raises(DBAPIError) as failed:
        _backend_pid(pg)
    assert failed.value.connection_invalidated  # seen as a disconnect, the pool invalidated
    assert _backend_pid(pg) != first
    assert pings == []


_LOOKUP = select(bindparam("x").label("x"))


def _prepared_after_reads(pg: Engine, opener: object) -> int:
    """Reads a driver statement 8 times (psycopg prepares it from the 6th time on a
    connection) in blocks opened by ``opener``; the prepared statements left on the
    connection."""
    for i in range(8):
        with opener() as conn:  # type: ignore[operator]
            assert driver_sql.fetch(conn, "test: lookup", lambda: _LOOKUP, {"x": i}) == [(i,)]
    with pg.connect() as conn:  # the same pooled connection (one at a time here)
        return int(conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one())


def test_reads_keep_the_prepared_statements_a_rollback_throws_away(pg: Engine) -> None:
    assert _prepared_after_reads(pg, lambda: engine_mod.reading(pg)) >= 1
    pg.dispose()
    assert _prepared_after_reads(pg, pg.connect) == 0  # each block ended in ROLLBACK


def test_a_read_block_is_in_autocommit_on_postgresql(pg: Engine) -> None:
    with engine_mod.reading(pg) as conn:
        conn.execute(text("SELECT 1"))
        assert conn.connection.driver_connection.autocommit  # type: ignore[union-attr]
    with pg.connect() as conn:  # the pool's connection is given back as it was
        conn.execute(text("SELECT 1"))
        assert not conn.connection.driver_connection.autocommit  # type: ignore[union-attr]


def test_the_app_engines_reader_is_only_ever_its_own(pg: Engine) -> None:
    url = pg.url.render_as_string(hide_password=False)
    app = engine_mod.get_engine(url)  # the app's engine, and a scratch one on the same URL
    try:
        with engine_mod.reading(app) as conn:
            assert conn.engine.pool is app.pool
            assert conn.connection.driver_connection.autocommit  # type: ignore[union-attr]
        with engine_mod.reading(pg) as conn:
            assert conn.engine.pool is pg.pool
    finally:
        engine_mod._engines.pop(url, None)
        app.dispose()
