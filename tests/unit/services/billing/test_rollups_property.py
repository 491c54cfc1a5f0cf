"""usage_rollup always equals a GROUP BY over the raw ledger rows, whatever is written, one by
one or batched (issue 10: the dashboards read the rollups, so they must never drift)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from elexirion_app.db.engine import create_all, make_engine
from elexirion_app.db.models import AppUser, LLMCall, UsageRollup
from elexirion_app.services.billing import ledger
from elexirion_app.services.billing.buckets import LAT_COLUMNS, TTFT_COLUMNS, bucket_of

CALL = LLMCall.__table__  # type: ignore[attr-defined]
ROLLUP = UsageRollup.__table__  # type: ignore[attr-defined]
USER = AppUser.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)

attempts = st.builds(
    ledger.Attempt,
    caller=st.sampled_from(["chat", "router", "genesis", "step", "api"]),
    provider=st.sampled_from(["claude", "gemini", "offline"]),
    model=st.sampled_from(["claude-sonnet-4-5", "gemini-2.5-flash", "offline-demo"]),
    status=st.sampled_from(["ok", "ok", "error", "stopped"]),
    user_id=st.sampled_from([None, 1, 2]),
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
    created_at=st.integers(0, 72 * 60).map(lambda m: T0 + timedelta(minutes=m)),
)


def _expected(rows: list[Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows:
        key = (
            ledger.hour_of(r.created_at).replace(tzinfo=None),
            r.user_id or 0, r.model, r.provider, r.pipeline, r.caller,
        )  # fmt: skip
        g = out[key]
        g["calls"] += 1
        g["errors"] += r.status == "error"
        g["cost_usd"] += Decimal(str(r.cost_usd))
        for c in ("input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking"):
            g[f"{c}_tokens"] += getattr(r, f"{c}_tokens")
        g["latency_ms_sum"] += Decimal(str(r.latency_ms))
        g[LAT_COLUMNS[bucket_of(r.latency_ms)]] += 1
        if r.ttft_ms is not None:
            g["ttft_count"] += 1
            g[TTFT_COLUMNS[bucket_of(r.ttft_ms)]] += 1
        if r.offline:
            g["offline_calls"] += 1
            g["live_estimate_usd"] += Decimal(str(r.live_estimate_usd or 0))
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(attempts, min_size=1, max_size=8), min_size=1, max_size=6))
def test_rollups_equal_group_by_over_the_raw_rows(tmp_path: Path, batches: list[Any]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    create_all(engine)
    with engine.begin() as conn:
        conn.execute(delete(CALL))
        conn.execute(delete(ROLLUP))
        if not conn.execute(select(USER.c.id)).first():  # the users rows may belong to
            conn.execute(insert(USER), [{"id": i, "email": f"u{i}@x.io"} for i in (1, 2)])
    for i, batch in enumerate(batches):
        if i % 2:
            ledger.record_many(batch, engine=engine)
        else:
            for a in batch:
                ledger.record(a, engine=engine)
    with engine.connect() as conn:
        rows = conn.execute(select(CALL)).all()
        rolled = conn.execute(select(ROLLUP)).all()
    engine.dispose()
    assert len(rows) == sum(len(b) for b in batches)
    expected = _expected(list(rows))
    got = {
        (r.hour.astimezone(UTC).replace(tzinfo=None), r.user_id, r.model, r.provider, r.pipeline,
         r.caller): r
        for r in rolled
    }  # fmt: skip
    assert set(got) == set(expected)
    for key, want in expected.items():
        have = got[key]
        for column, value in want.items():
            if column in ("cost_usd", "live_estimate_usd", "latency_ms_sum"):
                assert float(getattr(have, column)) == float(value) or abs(
                    float(getattr(have, column)) - float(value)
                ) < 1e-6 * max(1.0, float(value)), column
            else:
                assert getattr(have, column) == value, column
        for column in (*LAT_COLUMNS, *TTFT_COLUMNS, "offline_calls"):
            assert getattr(have, column) == want.get(column, 0), column
