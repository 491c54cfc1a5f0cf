"""Engine overhead per step: ElexirionDSP vs LangGraph on a 100-step linear pipeline.

Every step calls the same zero-latency fake model function with a prompt built from the
previous step's answer, so what is measured is the engine: templates, prompt assembly,
events, metering, (optionally) SQLite run records — versus LangGraph's StateGraph.

    .venv/bin/python bench/engine_overhead.py [--steps 100] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from elexirion_app.core.types import LLMRequest, LLMResponse, StreamEvent, Usage  # noqa: E402
from elexirion_app.db.engine import create_all, make_engine  # noqa: E402
from elexirion_app.pipelines.executor import run_pipeline  # noqa: E402
from elexirion_app.services.runs.run_records import run_recorded  # noqa: E402


async def fake_model(prompt: str) -> str:
    """The zero-latency 'model' both engines call."""
    return f"answer to {len(prompt)} chars"


class FakeProvider:
    name = "fake"
    offline = True

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        text = await fake_model(request.prompt)
        usage = Usage(input=len(request.prompt) // 4, output=5)
        yield StreamEvent(
            "attempt",
            data={
                "attempt": 1,
                "status": 200,
                "error": None,
                "usage": usage.to_dict(),
                "latency_ms": 0.0,
                "model": "fake",
            },
        )
        yield StreamEvent("done", response=LLMResponse(text=text, model="fake", usage=usage))


def workflow(steps: int) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"name": "s0", "type": "claude", "prompt": [{"type": "static", "content": "start"}]}
    ]
    for i in range(1, steps):
        body.append(
            {
                "name": f"s{i}",
                "type": "claude",
                "prompt": [
                    {"type": "static", "content": f"Step {i}: improve on"},
                    {"type": "previous_response", "step": f"s{i - 1}"},
                ],
            }
        )
    return {"name": "bench", "steps": body}


async def time_runs(run: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append(time.perf_counter() - started)
    return times


class State(TypedDict):
    last: str
    count: int


def langgraph_app(steps: int) -> Any:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(State)

    def make(i: int) -> Callable[[State], Awaitable[dict[str, Any]]]:
        async def node(state: State) -> dict[str, Any]:
            prompt = "start" if i == 0 else f"Step {i}: improve on\n{state['last']}"
            return {"last": await fake_model(prompt), "count": state["count"] + 1}

        return node

    for i in range(steps):
        graph.add_node(f"s{i}", make(i))
    graph.add_edge(START, "s0")
    for i in range(1, steps):
        graph.add_edge(f"s{i - 1}", f"s{i}")
    graph.add_edge(f"s{steps - 1}", END)
    return graph.compile()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n, repeat = args.steps, args.repeat
    wf = workflow(n)
    provider = FakeProvider()
    tmp = Path(tempfile.mkdtemp(prefix="elexirion-bench-"))

    async def ours() -> None:
        outcome = await run_pipeline(
            wf,
            inputs={},
            provider_for=lambda kind: provider,
            workspace=tmp / "ws",
            output_dir=tmp / "out",
        )
        assert outcome.status == "succeeded", outcome.error

    engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
    create_all(engine)

    async def ours_sqlite() -> None:
        outcome = await run_recorded(
            wf,
            pipeline_yaml="(bench)",
            engine=engine,
            inputs={},
            provider_for=lambda kind: provider,
            workspace=tmp / "ws",
            output_dir=tmp / "out",
            heartbeat_s=5.0,
        )
        assert outcome.status == "succeeded", outcome.error

    app = langgraph_app(n)

    async def langgraph() -> None:
        state = await app.ainvoke({"last": "", "count": 0}, {"recursion_limit": n + 10})
        assert state["count"] == n

    results = {
        "ElexirionDSP (no persistence)": await time_runs(ours, repeat),
        "ElexirionDSP (SQLite run records)": await time_runs(ours_sqlite, repeat),
        "LangGraph StateGraph": await time_runs(langgraph, repeat),
    }
    per_step = {k: statistics.median(v) * 1000 / n for k, v in results.items()}
    print(f"{n}-step linear pipeline, zero-latency model, median of {repeat} runs")
    for name, ms in per_step.items():
        print(f"  {name:36s} {ms:7.3f} ms/step")
    lg = per_step["LangGraph StateGraph"]
    for name in list(per_step)[:2]:
        print(f"  ratio {name} / LangGraph: {per_step[name] / lg:.2f}")
    goal_ratio = per_step["ElexirionDSP (no persistence)"] / lg <= 1 / 3
    goal_sqlite = per_step["ElexirionDSP (SQLite run records)"] <= 2.0
    print(f"  goal ours <= 1/3 LangGraph: {'met' if goal_ratio else 'NOT met'}")
    print(f"  goal <= 2 ms/step with SQLite records: {'met' if goal_sqlite else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
