"""A synthetic ledger for ``bench/dashboard.py``: users, conversations, runs and LLM calls
spread over 90 days, written through the app's own write path (``services.billing.ledger``:
``write`` for calls + usage and conversation rollups, ``record_run`` for the run rollups and
the run booking), in batches.

Shape (seeded, deterministic): 50 users with Zipf-like activity, each using 2–3 of 10 models
(one of them the offline demo model) and 3–5 of 20 pipelines; callers step 55 %, chat 30 %,
router 8 %, api 4 %, genesis 2 %, dspy 1 %; step calls come in runs of 3–9 calls; 2 % errors;
log-normal latencies per model, time to first token for streamed callers.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from elexirion_app.db.models import AppUser, Conversation, Run
from elexirion_app.services.billing import ledger
from elexirion_app.services.billing.ledger import Attempt

DAYS = 90
USERS = 50
CONVERSATIONS_PER_USER = 40
# (model, provider, $ per input token, $ per output token, median latency ms)
MODELS = [
    ("claude-sonnet-4-5", "anthropic", 3e-6, 15e-6, 2400),
    ("claude-haiku-4-5", "anthropic", 1e-6, 5e-6, 900),
    ("claude-opus-4-1", "anthropic", 15e-6, 75e-6, 5200),
    ("gemini-2.5-pro", "gemini", 1.25e-6, 10e-6, 3100),
    ("gemini-2.5-flash", "gemini", 0.3e-6, 2.5e-6, 700),
    ("gemini-2.5-flash-lite", "gemini", 0.1e-6, 0.4e-6, 350),
    ("gpt-4.1", "openai", 2e-6, 8e-6, 1800),
    ("gpt-4.1-mini", "openai", 0.4e-6, 1.6e-6, 800),
    ("mistral-large", "mistral", 2e-6, 6e-6, 1500),
    ("mock", "mock", 3e-6, 15e-6, 20),  # the offline demo model: $0, a live estimate
]
PIPELINES = [f"pipeline_{i:02d}" for i in range(20)]
CALLERS = [("step", 55), ("chat", 30), ("router", 8), ("api", 4), ("genesis", 2), ("dspy", 1)]


@dataclass
class Profile:
    user_id: int
    models: list[int]
    pipelines: list[str]
    conversations: list[int]


def setup(engine: Engine, rnd: random.Random, start: datetime) -> list[Profile]:
    """The users and their conversations (plain rows: they are not ledger data)."""
    profiles = []
    with engine.begin() as conn:
        for i in range(USERS):
            uid = conn.execute(
                insert(AppUser.__table__).values(  # type: ignore[attr-defined]
                    email=f"bench{i}@example.com",
                    password_hash="",
                    display_name=f"Bench {i}",
                    is_admin=i == 0,
                    is_active=True,
                    created_at=start,
                )
            ).inserted_primary_key[0]
            convs = [
                conn.execute(
                    insert(Conversation.__table__).values(  # type: ignore[attr-defined]
                        user_id=uid,
                        title=f"Conversation {i}.{j}",
                        created_at=start,
                        updated_at=start,
                    )
                ).inserted_primary_key[0]
                for j in range(CONVERSATIONS_PER_USER)
            ]
            profiles.append(
                Profile(
                    user_id=int(uid),
                    models=rnd.sample(range(len(MODELS)), rnd.randint(2, 3)),
                    pipelines=rnd.sample(PIPELINES, rnd.randint(3, 5)),
                    conversations=[int(c) for c in convs],
                )
            )
    return profiles


class Generator:
    """Attempts (and the runs they belong to) in batches, until ``total`` calls."""

    def __init__(self, profiles: list[Profile], start: datetime, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.profiles = profiles
        self.start = start
        self.weights = [1 / (i + 1) ** 0.8 for i in range(len(profiles))]
        self.callers = [c for c, _w in CALLERS]
        self.caller_weights = [w for _c, w in CALLERS]

    def _when(self) -> datetime:
        return self.start + timedelta(seconds=self.rnd.uniform(0, DAYS * 86400))

    def _call(self, p: Profile, caller: str, when: datetime, **extra: Any) -> Attempt:
        r = self.rnd
        model, provider, p_in, p_out, median = MODELS[r.choice(p.models)]
        inp, out = int(r.lognormvariate(7.5, 0.8)), int(r.lognormvariate(5.8, 0.7))
        cache_read = int(inp * r.random() * 2) if provider == "anthropic" else 0
        cache_write = int(inp * r.random() * 0.3) if provider == "anthropic" else 0
        cache_1h = (
            int(inp * r.random() * 0.1) if provider == "anthropic" and r.random() < 0.2 else 0
        )
        thinking = int(out * r.random()) if provider == "gemini" else 0
        price = Decimal(
            str(round(inp * p_in + (out + thinking) * p_out + cache_read * p_in / 10, 8))
        )
        offline = provider == "mock"
        error = r.random() < 0.02
        latency = r.lognormvariate(0, 0.5) * median
        streamed = caller in ("chat", "step", "api")
        return Attempt(
            caller=caller,
            provider=provider,
            model=model,
            status="error" if error else "ok",
            error="overloaded" if error else None,
            user_id=p.user_id,
            input_tokens=inp,
            output_tokens=0 if error else out,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=cache_1h,
            thinking_tokens=thinking,
            cost_usd=Decimal("0") if offline or error else price,
            latency_ms=round(latency, 1),
            ttft_ms=round(latency * r.uniform(0.1, 0.4), 1) if streamed and not error else None,
            offline=offline,
            live_estimate_usd=price if offline else None,
            price_date="2026-11-01",
            created_at=when,
            **extra,
        )

    def batch(self, size: int) -> tuple[list[Attempt], list[dict[str, Any]]]:
        """About ``size`` attempts and the run rows their step calls belong to."""
        r = self.rnd
        calls: list[Attempt] = []
        runs: list[dict[str, Any]] = []
        while len(calls) < size:
            p = r.choices(self.profiles, self.weights)[0]
            caller = r.choices(self.callers, self.caller_weights)[0]
            when = self._when()
            if caller == "chat":
                calls.append(self._call(p, "chat", when, conversation_id=r.choice(p.conversations)))
                continue
            if caller != "step":
                calls.append(self._call(p, caller, when))
                continue
            run_id, pipeline = str(uuid.uuid4()), r.choice(p.pipelines)
            steps = []
            t = when
            for n in range(min(r.randint(3, 9), size - len(calls))):
                a = self._call(p, "step", t, run_id=run_id, step_name=f"s{n}", pipeline=pipeline)
                steps.append(a)
                t += timedelta(milliseconds=a.latency_ms)
            failed = any(a.status == "error" for a in steps) and r.random() < 0.5
            runs.append(
                {
                    "id": run_id,
                    "user_id": p.user_id,
                    "pipeline_name": pipeline,
                    "pipeline_yaml": "",
                    "inputs": {},
                    "status": "failed" if failed else "succeeded",
                    "cost_usd": sum((a.cost_usd for a in steps), Decimal("0")),
                    "tokens": {},
                    "created_at": when,
                    "started_at": when,
                    "finished_at": t,
                }
            )
            calls.extend(steps)
        return calls, runs


def write(engine: Engine, calls: list[Attempt], runs: list[dict[str, Any]]) -> None:
    """One transaction, as the app books a finished run: its row, its calls + usage rollups
    (``ledger.write``), its run rollup (``ledger.record_run``)."""
    with engine.begin() as conn:
        if runs:
            conn.execute(insert(Run.__table__), runs)  # type: ignore[attr-defined]
        ledger.write(conn, calls)
        for run in runs:
            ledger.record_run(
                conn,
                user_id=run["user_id"],
                pipeline=run["pipeline_name"],
                status=run["status"],
                cost_usd=run["cost_usd"],
                duration_ms=(run["finished_at"] - run["started_at"]).total_seconds() * 1000,
                finished_at=run["finished_at"],
                run_id=run["id"],
                created_at=run["created_at"],
            )


def fill(engine: Engine, gen: Generator, rows: int, batch: int) -> Iterator[int]:
    """Write ``rows`` calls in batches; yields the calls written per batch (a progress bar)."""
    done = 0
    while done < rows:
        calls, runs = gen.batch(min(batch, rows - done))
        write(engine, calls, runs)
        done += len(calls)
        yield len(calls)


def bench_start(now: datetime | None = None) -> datetime:
    """The first moment of the 90 days, ending at the current hour."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(days=DAYS)
