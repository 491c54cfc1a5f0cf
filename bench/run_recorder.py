"""CPU per API run spent in the run recorder's writes and the run's reads, on SQLite and on
PostgreSQL (127.0.0.1:5432, a scratch database created and dropped here), this tree against a
git revision's ``services/runs/recorder.py`` and ``services/runs/jobs.py`` in the same run.

One "run" is what ``POST /api/pipeline/execute`` of a 3-step pipeline costs those modules:
``queue_run`` (the run and its steps ``queued``), the recorder's batches as the event loop
hands them to the writer thread (RunStarted; StepStarted; StepFinished + the next StepStarted
twice; StepFinished + RunFinished, each batch one ``_write_batch`` call), and ``snapshot``
(the stream's final read). The ledger's own rows are not booked (bench/ledger_write.py).

    .venv/bin/python bench/run_recorder.py [--runs 2000] [--rounds 3] [--base HEAD]
                                           [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from elexirion_app.core.events import RunFinished, RunStarted, StepFinished, StepStarted  # noqa: E402
from elexirion_app.core.types import Usage  # noqa: E402
from elexirion_app.db.engine import create_all, make_engine  # noqa: E402
from elexirion_app.db.models import AppUser  # noqa: E402
from elexirion_app.services.runs import jobs, recorder  # noqa: E402

STEPS = ("fetch", "summarise", "review")
USER = 1
PHASES = ("queue_run", "writes", "snapshot")


def _module_at(rev: str, name: str, path: str) -> ModuleType:
    """``path`` as it is at ``rev``, imported under another name (``name``)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


@contextmanager
def _engine(kind: str) -> Iterator[Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            eng = make_engine(f"sqlite:///{tmp}/runs.db")
            yield eng
            eng.dispose()
        return
    from tests.support.scratch_pg import scratch_database

    with scratch_database("elx_bench_recorder") as eng:
        yield eng


def _one_run(engine: Engine, rec_mod: Any, snap: Any, spent: dict[str, float]) -> None:
    run_id = str(uuid.uuid4())
    t0 = time.process_time()
    rec_mod.queue_run(
        engine,
        run_id=run_id,
        pipeline_name="bench",
        pipeline_yaml="workflow:\n  name: bench\n",
        pipeline_path="/tmp/bench.yaml",
        inputs={"topic": "x"},
        step_names=STEPS,
        user_id=USER,
    )
    t1 = time.process_time()
    rec = rec_mod.RunRecorder(
        engine=engine,
        user_id=USER,
        heartbeat_s=0,
        workspace="/tmp/ws",
        output_dir="/tmp/ws/out",
        audit_address="127.0.0.1",
        audit_target="bench",
    )
    started = [StepStarted(run_id, name, "llm", i, model="offline") for i, name in enumerate(STEPS)]
    finished = [
        StepFinished(
            run_id,
            name,
            "succeeded",
            result={"text": "hello " * 20, "model": "offline"},
            usage=Usage(input=12, output=34),
            cost=Decimal("0"),
            latency_ms=1.5,
        )
        for name in STEPS
    ]
    batches = [
        [(rec._run_started, (RunStarted(run_id, "bench", {"topic": "x"}, STEPS),), False)],
        [(rec._step_started, (started[0],), False)],
        [(rec._step_finished, (finished[0],), False), (rec._step_started, (started[1],), False)],
        [(rec._step_finished, (finished[1],), False), (rec._step_started, (started[2],), False)],
        [
            (rec._step_finished, (finished[2],), False),
            (rec._run_finished, (RunFinished(run_id, "succeeded"),), True),
        ],
    ]
    for batch in batches:
        outcomes = rec._write_batch(batch)
        assert outcomes == [None] * len(batch), outcomes
    t2 = time.process_time()
    state = snap(USER, run_id)
    t3 = time.process_time()
    assert state.status == "succeeded" and len(state.steps) == 3, state
    spent["queue_run"] += t1 - t0
    spent["writes"] += t2 - t1
    spent["snapshot"] += t3 - t2


def _round(engine: Engine, rec_mod: Any, snap: Any, n: int) -> dict[str, float]:
    spent = dict.fromkeys(PHASES, 0.0)
    for _ in range(n):
        _one_run(engine, rec_mod, snap, spent)
    return {k: v / n * 1e6 for k, v in spent.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", default="HEAD", help="git revision to compare with")
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    args = ap.parse_args()
    base_rec = _module_at(
        args.base, "_bench_base_recorder", "elexirion_app/services/runs/recorder.py"
    )
    base_jobs = _module_at(args.base, "_bench_base_jobs", "elexirion_app/services/runs/jobs.py")
    variants = {"base": (base_rec, base_jobs), "this": (recorder, jobs)}
    for kind in ("sqlite", "postgresql"):
        if args.only and kind != args.only:
            continue
        results: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
        with _engine(kind) as engine:
            create_all(engine)
            with engine.begin() as conn:
                conn.execute(insert(AppUser.__table__), [{"id": USER, "email": "b@x.io"}])  # type: ignore[attr-defined]
            for _rec, job_mod in variants.values():
                job_mod.get_engine = lambda *a, _e=engine: _e  # snapshot's engine
            for rec_mod, job_mod in variants.values():
                _round(engine, rec_mod, job_mod.snapshot, 100)  # warm up
            for _ in range(args.rounds):
                for label, (rec_mod, job_mod) in variants.items():
                    results[label].append(_round(engine, rec_mod, job_mod.snapshot, args.runs))
        print(
            f"== {kind} — load average {os.getloadavg()[0]:.1f}, {args.runs} runs × "
            f"{args.rounds} rounds, base {args.base}; CPU µs per run (median of rounds)"
        )
        print(f"{'':<6}" + "".join(f"{p:>11}" for p in (*PHASES, "total")))
        for label, rows in results.items():
            med = {p: statistics.median(r[p] for r in rows) for p in PHASES}
            total = statistics.median(sum(r.values()) for r in rows)
            print(f"{label:<6}" + "".join(f"{med[p]:>11.0f}" for p in PHASES) + f"{total:>11.0f}")


if __name__ == "__main__":
    main()
