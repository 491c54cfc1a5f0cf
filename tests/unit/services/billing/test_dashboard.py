"""The dashboard's figures on a small ledger written through ``ledger.record_many``: equal to
values computed by hand, percentiles from the summed buckets, a member scoped to their own
rows whatever the filters say, and the CSV of what is shown."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert
from sqlmodel import select

from elexirion_app.core.errors import InputError, PermissionDenied
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.db.models import AppUser, Conversation, LLMCall, Run
from elexirion_app.services.billing import dashboard, ledger
from elexirion_app.services.billing.ledger import Attempt

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday
DAY1 = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)  # Monday
DAY2 = datetime(2026, 11, 17, 14, 5, tzinfo=UTC)  # Tuesday, same ISO week


@dataclass(frozen=True)
class World:
    alice: int
    bob: int
    admin: int
    conv: int
    runs: tuple[str, str]


def _user(email: str, *, is_admin: bool = False, active: bool = True) -> int:
    with session_scope() as s:
        user = AppUser(email=email, is_admin=is_admin, is_active=active)
        s.add(user)
        s.flush()
        assert user.id is not None
        return user.id


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    alice, bob = _user("alice@example.com"), _user("bob@example.com")
    admin = _user("root@example.com", is_admin=True)
    with session_scope() as s:
        conv = Conversation(user_id=alice, title="Quarterly numbers")
        s.add(conv)
        s.flush()
        assert conv.id is not None
        conv_id = conv.id
    run_ok, run_bad = "run-ok-0000", "run-bad-0000"
    with get_engine().begin() as conn:
        for rid, status, cost, pipeline in (
            (run_ok, "succeeded", Decimal("0.3"), "=evil"),
            (run_bad, "failed", Decimal("0.01"), "review"),
        ):
            conn.execute(
                insert(Run.__table__).values(  # type: ignore[attr-defined]
                    id=rid,
                    user_id=alice,
                    pipeline_name=pipeline,
                    pipeline_yaml="",
                    inputs={},
                    status=status,
                    cost_usd=cost,
                    tokens={},
                    created_at=DAY1,
                    started_at=DAY1,
                    finished_at=DAY1 + timedelta(seconds=2),
                )
            )
            ledger.record_run(
                conn,
                user_id=alice,
                pipeline=pipeline,
                status=status,
                cost_usd=cost,
                duration_ms=2000,
                finished_at=DAY1 + timedelta(seconds=2),
                run_id=rid,
            )
    common = {"provider": "anthropic", "model": "claude-sonnet-4-5", "price_date": "2026-11-01"}
    ledger.record_many(
        [
            # Alice, day 1: a run of two calls (one failed) and a chat call.
            Attempt(caller="step", user_id=alice, run_id=run_ok, pipeline="=evil",
                    input_tokens=100, output_tokens=20, cache_read_tokens=50,
                    cache_write_tokens=10, cache_write_1h_tokens=5,
                    cost_usd=Decimal("0.3"), latency_ms=40, ttft_ms=20, created_at=DAY1,
                    **common),
            Attempt(caller="step", user_id=alice, run_id=run_bad, pipeline="review",
                    status="error", error="overloaded", input_tokens=10,
                    cost_usd=Decimal("0.01"), latency_ms=90, created_at=DAY1, **common),
            Attempt(caller="chat", user_id=alice, conversation_id=conv_id, input_tokens=30,
                    output_tokens=7, cost_usd=Decimal("0.2"), latency_ms=700, ttft_ms=300,
                    created_at=DAY1 + timedelta(hours=2), **common),
            # Alice, day 2: the offline demo model (free; what it would cost live apart).
            Attempt(caller="chat", user_id=alice, conversation_id=conv_id, provider="mock",
                    model="mock", offline=True, live_estimate_usd=Decimal("0.05"),
                    input_tokens=40, output_tokens=8, thinking_tokens=3, latency_ms=30,
                    created_at=DAY2),
            # Bob: one expensive call (never in Alice's figures).
            Attempt(caller="api", user_id=bob, provider="gemini", model="gemini-2.5-pro",
                    input_tokens=1000, output_tokens=100, cost_usd=Decimal("5"),
                    latency_ms=2500, created_at=DAY2),
        ]
    )  # fmt: skip
    yield World(alice, bob, admin, conv_id, (run_ok, run_bad))


def _load(actor: int, **filters: object) -> dashboard.Dashboard:
    f = dashboard.parse_filters(now=NOW, **filters)  # type: ignore[arg-type]
    with session_scope() as s:
        return dashboard.load(s, actor, f)


def test_totals_series_and_models_equal_the_hand_computed_figures(world: World) -> None:
    d = _load(world.alice, range_="30d", grouping="day")
    t = d.totals
    assert (t.calls, t.errors) == (4, 1)
    assert t.cost_usd == Decimal("0.51")  # 0.3 + 0.01 + 0.2 (offline: 0)
    assert t.live_estimate_usd == Decimal("0.05") and t.offline_calls == 1
    assert t.tokens == {
        "input": 180,
        "output": 35,
        "cache_read": 50,
        "cache_write": 10,
        "cache_write_1h": 5,
        "thinking": 3,
    }
    assert t.latency_avg_ms == pytest.approx((40 + 90 + 700 + 30) / 4)
    # Buckets ≤50: 40, 30 · ≤100: 90 · ≤800: 700 → p50 = 50 (2nd of 4), p95 = 800 (4th).
    assert (t.latency_p50_ms, t.latency_p95_ms) == (50, 800)
    assert (t.ttft_p50_ms, t.ttft_p95_ms) == (25, 300)  # 20 → ≤25, 300 → ≤300
    used = [p for p in d.periods if p.usage.calls or p.runs.runs]
    assert [(p.key, p.usage.calls, p.usage.cost_usd) for p in used] == [
        ("2026-11-16", 3, Decimal("0.51")),
        ("2026-11-17", 1, Decimal("0")),
    ]
    assert [(p.runs.runs, p.runs.failed) for p in used] == [(2, 1), (0, 0)]
    # Every day of the range is there (the empty ones at zero), in order.
    assert [p.key for p in d.periods] == [
        (datetime(2026, 10, 21, tzinfo=UTC) + timedelta(days=i)).date().isoformat()
        for i in range(31)
    ]
    assert (d.run_totals.runs, d.run_totals.failed) == (2, 1)
    assert d.run_totals.cost_usd == Decimal("0.31")
    assert d.run_totals.duration_avg_ms == 2000
    assert [(m, p, x.calls, x.cost_usd) for m, p, x in d.models] == [
        ("claude-sonnet-4-5", "anthropic", 3, Decimal("0.51")),
        ("mock", "mock", 1, Decimal("0")),
    ]
    claude = d.models[0][2]
    # the three claude calls (the mock call's 40 / 8 / 3 apart)
    assert claude.tokens == t.tokens | {"input": 140, "output": 27, "thinking": 0}
    assert claude.errors == 1 and claude.live_estimate_usd == 0
    # 40 → ≤50, 90 → ≤100, 700 → ≤800: p50 = 100 (2nd of 3), p95 = 800; what the table
    # and CSV show. No average nor TTFT per model: not summed (dashboard_sql._model_columns).
    assert (claude.latency_p50_ms, claude.latency_p95_ms) == (100, 800)
    assert (claude.latency_avg_ms, claude.ttft_p50_ms, claude.ttft_p95_ms) == (None,) * 3
    assert d.options == {
        "model": ["claude-sonnet-4-5", "mock"],
        "provider": ["anthropic", "mock"],
        "pipeline": ["=evil", "review"],
        "caller": ["chat", "step"],
    }


def test_the_rollup_totals_equal_the_sums_of_the_ledger_rows(world: World) -> None:
    d = _load(world.admin, range_="30d", user="all")
    with session_scope() as s:
        calls, cost, tokens = s.exec(
            select(func.count(), func.sum(LLMCall.cost_usd), func.sum(LLMCall.input_tokens))  # type: ignore[call-overload]
        ).one()
    assert (d.totals.calls, d.totals.cost_usd, d.totals.tokens["input"]) == (
        calls,
        Decimal(str(cost)),
        tokens,
    )


def test_week_and_month_merge_the_buckets_of_their_days(world: World) -> None:
    week = _load(world.alice, range_="30d", grouping="week")
    assert [(p.key, p.usage.calls) for p in week.periods if p.usage.calls] == [("2026-11-16", 4)]
    assert [p.key for p in week.periods][:2] == ["2026-10-19", "2026-10-26"]  # Mondays
    merged = next(p.usage for p in week.periods if p.usage.calls)
    assert (merged.latency_p50_ms, merged.latency_p95_ms) == (50, 800)
    month = _load(world.alice, range_="30d", grouping="month")
    assert [(p.key, p.usage.calls, p.runs.runs) for p in month.periods] == [
        ("2026-10", 0, 0),
        ("2026-11", 4, 2),
    ]


def test_filters_narrow_every_figure(world: World) -> None:
    d = _load(world.alice, range_="30d", caller="chat")
    assert (d.totals.calls, d.totals.cost_usd) == (2, Decimal("0.2"))
    assert d.options["caller"] == ["chat", "step"]  # options ignore the other filters
    d = _load(world.alice, range_="30d", pipeline="review")
    assert (d.totals.calls, d.totals.errors) == (1, 1)
    assert (d.run_totals.runs, d.run_totals.failed) == (1, 1)
    assert d.top_conversations == []  # chat has no pipeline
    d = _load(world.alice, range_="30d", model="mock")
    assert (d.totals.calls, d.totals.cost_usd, d.totals.live_estimate_usd) == (
        1,
        Decimal("0"),
        Decimal("0.05"),
    )
    assert _load(world.alice, range_="24h").totals.calls == 0  # Nov 19–20: nothing


def test_a_member_sees_only_their_own_rows_whatever_the_user_filter(world: World) -> None:
    for user in ("all", str(world.bob), world.bob, "me"):
        d = _load(world.alice, range_="30d", user=user)
        assert d.scope.user_id == world.alice and not d.is_admin
        assert (d.totals.calls, d.scope_label, d.users) == (4, "your usage", [])
        assert {m for m, _p, _x in d.models} == {"claude-sonnet-4-5", "mock"}
    bob = _load(world.bob, range_="30d", user=str(world.alice))
    assert (bob.totals.calls, bob.totals.cost_usd) == (1, Decimal("5"))
    assert bob.top_runs == [] and bob.top_conversations == []


def test_an_admin_sees_everyone_or_one_user(world: World) -> None:
    everyone = _load(world.admin, range_="30d", user="all")
    assert (everyone.totals.calls, everyone.totals.cost_usd) == (5, Decimal("5.51"))
    assert everyone.scope_label == "everyone" and everyone.is_admin
    assert {e for _i, e in everyone.users} >= {"alice@example.com", "bob@example.com"}
    one = _load(world.admin, range_="30d", user=str(world.bob))
    assert (one.totals.calls, one.scope_label) == (1, "bob@example.com")
    assert _load(world.admin, range_="30d").totals.calls == 0  # "me": the admin's own
    with pytest.raises(InputError):
        _load(world.admin, range_="30d", user="999999")


def test_the_role_is_checked_in_the_database_on_every_call(world: World) -> None:
    f = dashboard.parse_filters(now=NOW, range_="30d", user="all")
    with session_scope() as s:
        s.get(AppUser, world.admin).is_admin = False  # type: ignore[union-attr]
    with session_scope() as s:
        assert dashboard.load(s, world.admin, f).scope.user_id == world.admin
    with session_scope() as s:
        s.get(AppUser, world.alice).is_active = False  # type: ignore[union-attr]
    for actor in (world.alice, 424242, None, True, "1"):
        with session_scope() as s, pytest.raises(PermissionDenied):
            dashboard.load(s, actor, f)


def test_costliest_runs_and_conversations(world: World) -> None:
    d = _load(world.alice, range_="30d")
    assert [(r.id, r.status, r.cost_usd) for r in d.top_runs] == [
        (world.runs[0], "succeeded", Decimal("0.3")),
        (world.runs[1], "failed", Decimal("0.01")),
    ]
    assert [(c.id, c.title, c.calls, c.cost_usd) for c in d.top_conversations] == [
        (world.conv, "Quarterly numbers", 2, Decimal("0.2"))
    ]
    assert d.top_conversations[0].last_at == DAY2


def test_the_csv_is_what_is_shown(world: World) -> None:
    d = _load(world.alice, range_="30d")
    rows = list(csv.DictReader(io.StringIO(dashboard.to_csv(d))))
    total = rows[0]
    assert (total["section"], total["calls"], total["cost_usd"]) == ("total", "4", "0.51000000")
    assert total["would_cost_live_usd"] == "0.05000000" and total["runs"] == "2"
    assert (total["latency_p50_ms"], total["latency_p95_ms"]) == ("50", "800")
    days = [(r["key"], r["calls"]) for r in rows if r["section"] == "day" and r["calls"] != "0"]
    assert days == [("2026-11-16", "3"), ("2026-11-17", "1")]
    models = [(r["key"], r["label"], r["cost_usd"]) for r in rows if r["section"] == "model"]
    assert models == [
        ("claude-sonnet-4-5", "anthropic", "0.51000000"),
        ("mock", "mock", "0.00000000"),
    ]
    runs = [(r["key"], r["label"], r["run_cost_usd"]) for r in rows if r["section"] == "run"]
    assert runs == [
        (world.runs[0], "'=evil", "0.30000000"),
        (world.runs[1], "review", "0.01000000"),
    ]
    convs = [(r["label"], r["calls"]) for r in rows if r["section"] == "conversation"]
    assert convs == [("Quarterly numbers", "2")]
    assert "bob" not in dashboard.to_csv(d) and "5.00000000" not in dashboard.to_csv(d)


@pytest.mark.parametrize(
    "filters",
    [
        {"range_": "10y"},
        {"grouping": "hour"},
        {"user": "-3"},
        {"user": "bob@example.com"},
        {"model": "x" * 300},
        {"model": ["a"]},
        {"since": "2025-01-01", "until": "2026-11-01"},  # more than 366 days
        {"since": "2026-11-10", "until": "2026-11-01"},
        {"since": "yesterday"},
    ],
)
def test_bad_filters_are_refused_clearly(filters: dict[str, object]) -> None:
    with pytest.raises(InputError):
        dashboard.parse_filters(now=NOW, **filters)  # type: ignore[arg-type]


def test_days_win_over_the_preset_and_until_is_inclusive() -> None:
    f = dashboard.parse_filters(now=NOW, range_="24h", since="2026-11-01", until="2026-11-02")
    assert (f.since, f.until) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 3, tzinfo=UTC),
    )
    assert dashboard.parse_filters(now=NOW, model="any", user="all").model is None
