"""Every rollup always equals a GROUP BY over the raw rows, whatever is written, one by one or
batched, with conversations unlinked, runs finishing, resumed (finishing again) and deleted
(issue 10: the dashboards read the rollups, so they must never drift)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlmodel import Session

from elexirion_app.db import billing_models as bm
from elexirion_app.db.engine import create_all, make_engine
from elexirion_app.db.models import AppUser, Conversation, LLMCall, Run, RunRollup, UsageRollup
from elexirion_app.services.billing import ledger
from elexirion_app.services.billing.buckets import LAT_COLUMNS, TTFT_COLUMNS, bucket_of

CALL = LLMCall.__table__  # type: ignore[attr-defined]
ROLLUP = UsageRollup.__table__  # type: ignore[attr-defined]
USER = AppUser.__table__  # type: ignore[attr-defined]
CONV = Conversation.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
RUN_IDS = ("run-a", "run-b", "run-c")
RUN_OWNER = {"run-a": (1, "code_analysis"), "run-b": (2, "refactor"), "run-c": (None, "")}
MONEY = ("cost_usd", "live_estimate_usd")
FLOATS = ("latency_ms_sum", "ttft_ms_sum", "duration_ms_sum")

moments = st.integers(0, 72 * 60).map(lambda m: T0 + timedelta(minutes=m, seconds=7))
attempts = st.builds(
    ledger.Attempt,
    caller=st.sampled_from(["chat", "router", "genesis", "step", "api"]),
    provider=st.sampled_from(["claude", "gemini", "offline"]),
    model=st.sampled_from(["claude-sonnet-4-5", "gemini-2.5-flash", "offline-demo"]),
    status=st.sampled_from(["ok", "ok", "error", "stopped"]),
    user_id=st.sampled_from([None, 1, 2]),
    conversation_id=st.sampled_from([None, None, 1, 2]),
    pipeline=st.sampled_from(["", "code_analysis", "refactor"]),
    input_tokens=st.integers(0, 10**6),
    output_tokens=st.integers(0, 10**5),
    cache_read_tokens=st.integers(0, 10**5),
    cache_write_tokens=st.integers(0, 10**4),
    cache_write_1h_tokens=st.integers(0, 10**4),
    thinking_tokens=st.integers(0, 10**4),
    cost_usd=st.decimals(0, 5, places=8),
    latency_ms=st.floats(0, 60000),
    ttft_ms=st.none() | st.floats(0, 30000),
    offline=st.booleans(),
    live_estimate_usd=st.none() | st.decimals(0, 1, places=8),
    created_at=moments,
).map(  # a conversation's calls are its owner's (conversation i belongs to user i)
    lambda a: replace(a, conversation_id=a.user_id if a.conversation_id else None)
)
finishes = st.tuples(
    st.just("finish"),
    st.sampled_from(RUN_IDS),
    st.sampled_from(["succeeded", "failed", "interrupted"]),
    st.decimals(0, 3, places=8),
    st.floats(0, 10**6),
    moments,
)
operations = st.lists(
    st.tuples(
        st.sampled_from(["one by one", "batched"]), st.lists(attempts, min_size=1, max_size=6)
    )
    | finishes
    | st.tuples(st.just("unlink conversation"), st.sampled_from([1, 2]))
    | st.tuples(st.just("unlink runs"), st.lists(st.sampled_from(RUN_IDS), max_size=2)),
    min_size=1,
    max_size=10,
)


def _h(moment: datetime) -> datetime:
    return ledger.hour_of(moment).replace(tzinfo=None)


def _d(moment: datetime) -> datetime:
    return ledger.day_of(moment).replace(tzinfo=None)


def _usage(r: Any) -> dict[str, Any]:
    g: dict[str, Any] = {"calls": 1, "errors": int(r.status == "error")}
    g["cost_usd"] = Decimal(str(r.cost_usd))
    for c in ("input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking"):
        g[f"{c}_tokens"] = getattr(r, f"{c}_tokens")
    g["latency_ms_sum"] = r.latency_ms
    g[LAT_COLUMNS[bucket_of(r.latency_ms)]] = 1
    if r.ttft_ms is not None:
        g["ttft_count"], g["ttft_ms_sum"] = 1, r.ttft_ms
        g[TTFT_COLUMNS[bucket_of(r.ttft_ms)]] = 1
    if r.offline:
        g["offline_calls"] = 1
        g["live_estimate_usd"] = Decimal(str(r.live_estimate_usd or 0))
    return g


def _shard(r: Any) -> int:
    return (r.user_id or 0) % ledger.SHARDS


def _dims(r: Any) -> tuple[str, str, str, str]:
    return (r.model, r.provider, r.pipeline, r.caller)


# table -> (its key of a raw row, the counters of a raw row); usage tables over llm_call rows.
USAGE_KEYS: dict[Any, Callable[[Any], tuple[Any, ...]]] = {
    UsageRollup: lambda r: (_h(r.created_at), r.user_id or 0, *_dims(r)),
    bm.UsageDay: lambda r: (_d(r.created_at), r.user_id or 0, *_dims(r)),
    bm.UsageDayAll: lambda r: (_d(r.created_at), _shard(r), r.model, r.provider, r.caller),
    bm.UsageDayPipeline: lambda r: (
        _d(r.created_at), _shard(r), r.pipeline, r.model, r.provider, r.caller
    ),
    bm.UsageHourAll: lambda r: (_h(r.created_at), _shard(r), r.model, r.provider, r.caller),
    bm.UsageDayModel: lambda r: (_d(r.created_at), _shard(r), r.model, r.provider),
    bm.UsageHourModel: lambda r: (_h(r.created_at), _shard(r), r.model, r.provider),
    bm.UsageDayUser: lambda r: (_d(r.created_at), r.user_id or 0),
    bm.UsageHourUser: lambda r: (_h(r.created_at), r.user_id or 0),
    bm.UsageDayUserModel: lambda r: (_d(r.created_at), r.user_id or 0, r.model, r.provider),
    bm.UsageHourUserModel: lambda r: (_h(r.created_at), r.user_id or 0, r.model, r.provider),
    bm.UsageDayTotal: lambda r: (_d(r.created_at), _shard(r)),
    bm.UsageHourTotal: lambda r: (_h(r.created_at), _shard(r)),
}  # fmt: skip
TABLE_KEYS: dict[Any, tuple[str, ...]] = {
    UsageRollup: ("hour", "user_id", "model", "provider", "pipeline", "caller"),
    bm.UsageDay: ("day", "user_id", "model", "provider", "pipeline", "caller"),
    bm.UsageDayAll: ("day", "shard", "model", "provider", "caller"),
    bm.UsageDayPipeline: ("day", "shard", "pipeline", "model", "provider", "caller"),
    bm.UsageHourAll: ("hour", "shard", "model", "provider", "caller"),
    bm.UsageDayModel: ("day", "shard", "model", "provider"),
    bm.UsageHourModel: ("hour", "shard", "model", "provider"),
    bm.UsageDayUser: ("day", "user_id"),
    bm.UsageHourUser: ("hour", "user_id"),
    bm.UsageDayUserModel: ("day", "user_id", "model", "provider"),
    bm.UsageHourUserModel: ("hour", "user_id", "model", "provider"),
    bm.UsageDayTotal: ("day", "shard"),
    bm.UsageHourTotal: ("hour", "shard"),
    bm.ConversationBooking: ("conversation_id",),
    RunRollup: ("hour", "user_id", "pipeline", "status"),
    bm.RunDay: ("day", "user_id", "pipeline", "status"),
    bm.RunDayAll: ("day", "shard", "pipeline", "status"),
    bm.RunDayTotal: ("day", "status"),
    bm.RunHourTotal: ("hour", "status"),
    bm.RunDayUser: ("user_id", "day"),
    bm.RunHourUser: ("user_id", "hour"),
}


OPTION_TABLES = ((bm.UsageOptionDay, "day", _d), (bm.UsageOptionHour, "hour", _h))


def _assert_options(conn: Any, rows: Sequence[Any]) -> None:
    """The option tables hold exactly the distinct non-empty (user, period, kind, value) of
    the raw rows, per user and for every user (``EVERY_USER``)."""
    for model, grain, period in OPTION_TABLES:
        want = {
            (user, period(r.created_at), kind, getattr(r, kind))
            for r in rows
            for user in (r.user_id or 0, bm.EVERY_USER)
            for kind in ("model", "provider", "pipeline", "caller")
            if getattr(r, kind)
        }
        table = model.__table__
        got = [
            (r.user_id, _naive(r[grain]), r.kind, r.value)
            for r in conn.execute(select(table)).mappings()
        ]
        assert len(got) == len(set(got)) and set(got) == want, model.__tablename__


def _group(
    rows: Sequence[Any], key: Callable[[Any], tuple[Any, ...]], counters: Callable[[Any], Any]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        g = out[key(r)]
        for column, value in counters(r).items():
            if column == "last_at":
                g[column] = max(g.get(column) or value, value)
            elif column in ("first_at", "started_day"):
                g[column] = min(g.get(column) or value, value)
            elif column == "user_id":  # the conversation's owner
                g[column] = value
            else:
                g[column] += value
    return out


def _naive(value: Any) -> Any:
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value


def _assert_table(conn: Any, model: Any, expected: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    table = model.__table__
    key = TABLE_KEYS[model]
    count = "runs" if "runs" in table.c else "calls"
    got = {}
    for r in conn.execute(select(table)).mappings():
        if r[count] == 0:  # a resumed run's earlier count, taken back
            assert Decimal(str(r["cost_usd"])) == 0 and abs(r["duration_ms_sum"]) < 1e-3
            continue
        got[tuple(_naive(r[k]) for k in key)] = r
    assert set(got) == set(expected), model.__tablename__
    for k, want in expected.items():
        have = got[k]
        for column in (c.name for c in table.c if c.name not in key and c.name != "id"):
            value, wanted = have[column], want.get(column, 0)
            if column in MONEY:
                assert Decimal(str(value)) == wanted, (model.__tablename__, column)
            elif column in FLOATS:
                assert abs(float(value) - float(wanted)) < 1e-6 * max(1.0, float(wanted)), column
            elif column in ("last_at", "first_at", "started_day"):
                assert _naive(value) == _naive(wanted), column
            else:
                assert value == wanted, (model.__tablename__, column)


def _setup(engine: Any) -> None:
    create_all(engine)
    ledger.forget_known_options()  # the option rows are deleted below (same file each example)
    with engine.begin() as conn:
        for model in (*TABLE_KEYS, bm.RunBooking, bm.UsageOptionDay, bm.UsageOptionHour):
            conn.execute(delete(model.__table__))
        conn.execute(delete(CALL))
        conn.execute(delete(RUN))
        if not conn.execute(select(USER.c.id)).first():  # the users rows may belong to
            conn.execute(insert(USER), [{"id": i, "email": f"u{i}@x.io"} for i in (1, 2)])
        if not conn.execute(select(CONV.c.id)).first():
            conn.execute(insert(CONV), [{"id": i, "user_id": i, "title": f"c{i}"} for i in (1, 2)])
        for rid in RUN_IDS:
            user, pipeline = RUN_OWNER[rid]
            conn.execute(
                insert(RUN).values(
                    id=rid, user_id=user, pipeline_name=pipeline, pipeline_yaml="", inputs={},
                    status="running", cost_usd=0, tokens={}, created_at=T0 - timedelta(hours=5),
                )
            )  # fmt: skip


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_every_rollup_equals_group_by_over_the_raw_rows(tmp_path: Path, ops: list[Any]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    _setup(engine)
    last_finish: dict[str, dict[str, Any]] = {}  # run id -> how it last finished
    deleted: set[str] = set()
    written = 0
    for op in ops:
        if op[0] == "one by one":
            for a in op[1]:
                ledger.record(a, engine=engine)
            written += len(op[1])
        elif op[0] == "batched":
            ledger.record_many(op[1], engine=engine)
            written += len(op[1])
        elif op[0] == "finish":
            _kind, rid, status, cost, duration, when = op
            if rid in deleted:
                continue
            user, pipeline = RUN_OWNER[rid]
            with engine.begin() as conn:
                ledger.record_run(
                    conn, user_id=user, pipeline=pipeline, status=status, cost_usd=cost,
                    duration_ms=duration, finished_at=when, run_id=rid,
                )  # fmt: skip
            last_finish[rid] = {
                "user_id": user or 0,
                "pipeline": pipeline,
                "status": status,
                "cost_usd": cost,
                "duration_ms_sum": duration,
                "at": when,
            }
        else:
            with Session(engine) as session:
                if op[0] == "unlink conversation":
                    ledger.unlink_conversation(session, op[1])
                else:
                    ledger.unlink_runs(session, op[1])
                    deleted |= set(op[1])
                session.commit()
    with engine.connect() as conn:
        rows = conn.execute(select(CALL)).all()
        assert len(rows) == written
        for model, key in USAGE_KEYS.items():
            _assert_table(conn, model, _group(rows, key, _usage))
        _assert_options(conn, rows)
        linked = [r for r in rows if r.conversation_id is not None]
        _assert_table(
            conn,
            bm.ConversationBooking,
            _group(
                linked,
                lambda r: (r.conversation_id,),
                lambda r: {
                    "user_id": r.user_id or 0,
                    "calls": 1,
                    "cost_usd": Decimal(str(r.cost_usd)),
                    "last_at": r.created_at,
                    "first_at": r.created_at,
                    "started_day": _d(r.created_at),
                },
            ),
        )
        # Runs: each counted once, as it last finished (a resumed run is not counted twice);
        # deleting a run leaves its count and takes it off the costliest-runs booking.
        runs = list(last_finish.values())

        def count(r: dict[str, Any]) -> dict[str, Any]:
            return {"runs": 1, "cost_usd": r["cost_usd"], "duration_ms_sum": r["duration_ms_sum"]}

        for model, key_of in (
            (RunRollup, lambda r: (_h(r["at"]), r["user_id"], r["pipeline"], r["status"])),
            (bm.RunDay, lambda r: (_d(r["at"]), r["user_id"], r["pipeline"], r["status"])),
            (
                bm.RunDayAll,
                lambda r: (_d(r["at"]), r["user_id"] % ledger.SHARDS, r["pipeline"], r["status"]),
            ),
            (bm.RunDayTotal, lambda r: (_d(r["at"]), r["status"])),
            (bm.RunHourTotal, lambda r: (_h(r["at"]), r["status"])),
        ):
            _assert_table(conn, model, _group(runs, key_of, count))

        def count_failed(r: dict[str, Any]) -> dict[str, Any]:
            return count(r) | {"failed": 0 if r["status"] in bm.OK_RUN_STATUSES else 1}

        for model, key_of in (
            (bm.RunDayUser, lambda r: (r["user_id"], _d(r["at"]))),
            (bm.RunHourUser, lambda r: (r["user_id"], _h(r["at"]))),
        ):
            _assert_table(conn, model, _group(runs, key_of, count_failed))
        booked = {
            r.run_id: (r.status, Decimal(str(r.cost_usd)), _naive(r.started_day))
            for r in conn.execute(select(bm.RunBooking.__table__))  # type: ignore[attr-defined]
        }
        assert booked == {
            rid: (f["status"], f["cost_usd"], _d(T0 - timedelta(hours=5)))
            for rid, f in last_finish.items()
            if rid not in deleted
        }
    engine.dispose()
