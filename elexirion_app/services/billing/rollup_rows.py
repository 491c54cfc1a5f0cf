"""The rows the ledger writer upserts into its rollups, aggregated in Python from a batch of
``llm_call`` rows (pure functions: no database; ``ledger`` is the one writer that runs them).

Every function returns its rows sorted by key, so concurrent writers lock rollup keys in one
order and cannot deadlock each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from elexirion_app.services.billing.buckets import LAT_COLUMNS, TTFT_COLUMNS, bucket_of

ZERO = Decimal("0")
TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "thinking_tokens",
)
ROLLUP_KEY = ("hour", "user_id", "model", "provider", "pipeline", "caller")
ROLLUP_COUNTERS = (
    "calls",
    "errors",
    "cost_usd",
    *TOKEN_COLUMNS,
    "latency_ms_sum",
    "ttft_ms_sum",
    "ttft_count",
    "offline_calls",
    "live_estimate_usd",
    *LAT_COLUMNS,
    *TTFT_COLUMNS,
)
CONVERSATION_COUNTERS = ("calls", "cost_usd")


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in (the hourly rollups' time key)."""
    return aware(moment).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """The UTC midnight of the day a moment falls in (the daily rollups' time key)."""
    return aware(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def _new_counters() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(ROLLUP_COUNTERS, 0)
    out["cost_usd"] = out["live_estimate_usd"] = ZERO
    out["latency_ms_sum"] = out["ttft_ms_sum"] = 0.0
    return out


def fine_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``llm_call`` rows aggregated per ``usage_rollup`` key."""
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (
            hour_of(r["created_at"]),
            int(r["user_id"] or 0),
            r["model"],
            r["provider"],
            r["pipeline"],
            r["caller"],
        )
        out = acc.get(key)
        if out is None:
            out = dict(zip(ROLLUP_KEY, key, strict=True))
            out.update(_new_counters())
            acc[key] = out
        out["calls"] += 1
        out["errors"] += 1 if r["status"] == "error" else 0
        out["cost_usd"] += Decimal(r["cost_usd"] or 0)
        if r["offline"]:
            out["offline_calls"] += 1
            out["live_estimate_usd"] += Decimal(r["live_estimate_usd"] or 0)
        for c in TOKEN_COLUMNS:
            out[c] += int(r[c] or 0)
        latency = float(r["latency_ms"] or 0.0)
        out["latency_ms_sum"] += latency
        out[LAT_COLUMNS[bucket_of(latency)]] += 1
        if r["ttft_ms"] is not None:
            ttft = float(r["ttft_ms"])
            out["ttft_ms_sum"] += ttft
            out["ttft_count"] += 1
            out[TTFT_COLUMNS[bucket_of(ttft)]] += 1
    return [acc[k] for k in sorted(acc)]


def derived_rows(
    fine: Sequence[dict[str, Any]], grain: str, dims: Sequence[str], shards: int
) -> list[dict[str, Any]]:
    """``fine_rows`` summed to a coarser key: ``grain`` "hour" | "day" and ``dims``, where
    the dimension "shard" is user_id % ``shards``."""
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in fine:
        moment = r["hour"] if grain == "hour" else day_of(r["hour"])
        values = tuple(int(r["user_id"]) % shards if d == "shard" else r[d] for d in dims)
        key = (moment, *values)
        out = acc.get(key)
        if out is None:
            out = {grain: moment, **dict(zip(dims, values, strict=True))}
            out.update({c: r[c] for c in ROLLUP_COUNTERS})
            acc[key] = out
            continue
        for c in ROLLUP_COUNTERS:
            out[c] += r[c]
    return [acc[k] for k in sorted(acc)]


OPTION_KINDS = ("model", "provider", "pipeline", "caller")


def option_rows(
    fine: Sequence[dict[str, Any]], grain: str, every_user: int
) -> list[dict[str, Any]]:
    """The ``usage_option_day`` / ``_hour`` keys of ``fine_rows`` (``grain`` "day" | "hour"):
    each non-empty model, provider, pipeline and caller once per period, for the row's user
    and for ``every_user``."""
    keys: set[tuple[Any, ...]] = set()
    for r in fine:
        moment = r["hour"] if grain == "hour" else day_of(r["hour"])
        for user in (int(r["user_id"]), every_user):
            keys.update((user, moment, kind, r[kind]) for kind in OPTION_KINDS if r[kind])
    return [dict(zip(("user_id", grain, "kind", "value"), k, strict=True)) for k in sorted(keys)]


def conversation_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``conversation_booking`` row per conversation of the batch (its calls, cost, first
    and last call)."""
    acc: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r["conversation_id"] is None:
            continue
        cid = int(r["conversation_id"])
        at = r["created_at"]
        out = acc.get(cid)
        if out is None:
            acc[cid] = {
                "conversation_id": cid,
                "user_id": int(r["user_id"] or 0),
                "started_day": day_of(at),
                "first_at": at,
                "last_at": at,
                "calls": 1,
                "cost_usd": Decimal(r["cost_usd"] or 0),
            }
            continue
        out["calls"] += 1
        out["cost_usd"] += Decimal(r["cost_usd"] or 0)
        if at < out["first_at"]:
            out["first_at"], out["started_day"] = at, day_of(at)
        out["last_at"] = max(out["last_at"], at)
    return [acc[k] for k in sorted(acc)]
