"""Visual editor, server side (issue #8): YAML → graph model and graph edit → YAML.

Generates a 200-step and a 10-step pipeline (header and per-step comments, inline comments,
``previous_response`` parts and ``{{steps.x.text}}`` references, block-scalar prompts, and a
for_loop every 50 steps) and times, over N runs each (median and p95, milliseconds):

- "open": text → ``EditorDocument.parse`` → ``graph_of(doc.data)`` → ``Graph.to_props()``
  (what the page does when a pipeline opens or the YAML is typed into);
- every edit on a kept ``EditorDocument`` (the web layer keeps one per open pipeline):
  insert, delete, move, set a scalar, set a multi-line text, add a key, rename (references
  follow), connect; alone and followed by the graph refresh (``graph_of`` + ``to_props``);
- the same edits through the text-level functions of ``editor/edits.py`` (parse + edit);
- for comparison, ruamel.yaml's round trip of the whole file (why edits do not re-dump it).

    .venv/bin/python bench/editor.py [--runs 50] [--profile]

Goals (issue #8): YAML → graph model ≤ 50 ms on 200 steps; graph edit → YAML ≤ 50 ms.
Results go to stdout; the exit code is 0 when every goal passes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from elexirion_app.editor import edits  # noqa: E402
from elexirion_app.editor.document import EditorDocument  # noqa: E402
from elexirion_app.editor.graph import graph_of  # noqa: E402
from elexirion_app.editor.yamltext import DEFAULT_STYLE, rt_dump, rt_load  # noqa: E402

GOAL_MS = 50.0


def generate(n: int) -> str:
    """A pipeline of ``n`` steps with comments, references and a loop every 50 steps."""
    out = [
        f"# Benchmark pipeline with {n} steps",
        "workflow:",
        f'  name: "bench_{n}"  # generated',
        "  defaults:",
        "    claude_model: sonnet",
        "",
        "  steps:",
    ]
    i = 0
    while i < n:
        if i % 50 == 5 and i + 3 <= n:
            out += [
                f"    # loop over the items of step_{i - 1}",
                f"    - name: loop_{i}",
                "      type: for_loop",
                "      iterator: item",
                f"      data_source: previous_response:step_{i - 1}",
                "      steps:",
                f"        - name: inner_{i}_a  # first",
                "          type: claude",
                "          prompt:",
                "            - type: static",
                '              content: "Handle {{loop.item}}"',
                f"        - name: inner_{i}_b",
                "          type: claude",
                "          prompt:",
                "            - type: previous_response",
                f"              step: inner_{i}_a",
                "",
            ]
            i += 3
            continue
        out += [
            f"    # Step {i}: one part of the analysis",
            f"    - name: step_{i}",
            '      type: "claude"',
            "      claude_options:",
            "        model: haiku  # cheap",
            "        max_turns: 1",
            "      prompt:",
            '        - type: "static"',
            "          content: |",
            f"            Analyse part {i} of the code base.",
            f"            Use {{{{steps.step_{max(i - 1, 0)}.text}}}} as context.",
        ]
        if i:
            out += ["        - type: previous_response", f"          step: step_{i - 1}"]
        out.append("")
        i += 1
    return "\n".join(out) + "\n"


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


Samples = tuple[list[float], list[float]]  # wall-clock and CPU milliseconds


def _time(fn: Callable[[], object], runs: int) -> Samples:
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def _time_on(
    fn: Callable[[EditorDocument], object], runs: int, setup: Callable[[], EditorDocument]
) -> Samples:
    """``fn`` timed on a fresh document from ``setup`` each run (the setup is not timed)."""
    wall, cpu = [], []
    for _ in range(runs):
        doc = setup()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(doc)
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def _kept(text: str) -> Callable[[], EditorDocument]:
    """A document as the web layer keeps it: opened and edited before (its node tree kept)."""

    def make() -> EditorDocument:
        doc = EditorDocument.parse(text)
        doc.set_field("step_1", ("claude_options", "max_turns"), 2)
        doc.set_field("step_1", ("claude_options", "max_turns"), 1)
        return doc

    return make


def _open(text: str) -> None:
    graph_of(EditorDocument.parse(text).data).to_props()


def _mid(n: int) -> str:
    """A top-level claude step in the middle of the generated pipeline."""
    return f"step_{n // 2 - 1}"


def _edits(n: int) -> dict[str, Callable[[EditorDocument], object]]:
    mid = _mid(n)
    return {
        "insert a claude step": lambda d: d.insert_step("claude", index=n // 2),
        "delete a step": lambda d: d.delete_step(mid),
        "move a step to the top": lambda d: d.move_step(mid, 0),
        "set a scalar (model)": lambda d: d.set_field(mid, ("claude_options", "model"), "opus"),
        "set a multi-line text": lambda d: d.set_field(
            mid, ("prompt", 0, "content"), "New text\nover two lines\n"
        ),
        "add a key": lambda d: d.set_field(mid, ("output_to_file",), "out.md"),
        "rename (references follow)": lambda d: d.rename_step(mid, "renamed_step"),
        "connect": lambda d: d.connect("step_1", mid),
    }


def _text_edits(n: int) -> dict[str, Callable[[str], object]]:
    mid = _mid(n)
    return {
        "insert a claude step": lambda t: edits.insert_step(t, "claude", index=n // 2),
        "delete a step": lambda t: edits.delete_step(t, mid),
        "move a step to the top": lambda t: edits.move_step(t, mid, 0),
        "set a scalar (model)": lambda t: edits.set_field(
            t, mid, ("claude_options", "model"), "opus"
        ),
        "rename (references follow)": lambda t: edits.rename_step(t, mid, "renamed_step"),
        "connect": lambda t: edits.connect(t, "step_1", mid),
    }


def _row(label: str, samples: Samples, goal: float | None = None) -> bool:
    med, p95 = _stats(samples[0])
    cpu_med, cpu_p95 = _stats(samples[1])
    verdict = ""
    ok = True
    if goal is not None:
        ok = p95 <= goal
        verdict = "  ok" if ok else f"  OVER the {goal:.0f} ms goal"
    print(
        f"  {label:40s} median {med:6.2f}  p95 {p95:6.2f} ms"
        f"  (cpu {cpu_med:6.2f} / {cpu_p95:6.2f}){verdict}"
    )
    return ok


def run(runs: int) -> bool:
    ok = True
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; times in ms")
    for n in (10, 200):
        text = generate(n)
        doc = EditorDocument.parse(text)
        nodes, edges = graph_of(doc.data).to_props()
        print(
            f"\n{n}-step pipeline: {len(text.splitlines())} lines, {len(text) // 1024} KB, "
            f"{len(nodes)} nodes, {len(edges)} edges ({runs} runs each)"
        )
        print(" YAML → graph model")
        ok &= _row("parse + graph_of + to_props", _time(partial(_open, text), runs), GOAL_MS)
        kept = _kept(text)
        print(" graph edit → YAML, on a kept EditorDocument")
        for label, op in _edits(n).items():
            ok &= _row(label, _time_on(op, runs, kept), GOAL_MS)
        first = _edits(n)["set a scalar (model)"]
        ok &= _row(
            "first edit after opening: set a scalar",
            _time_on(first, runs, partial(EditorDocument.parse, text)),
            GOAL_MS,
        )
        print(" graph edit → YAML + graph refresh (graph_of + to_props), kept document")
        for label, op in _edits(n).items():

            def with_graph(d: EditorDocument, op: Callable[[EditorDocument], object] = op) -> None:
                op(d)
                graph_of(d.data).to_props()

            ok &= _row(label, _time_on(with_graph, runs, kept), GOAL_MS)
        print(" text-level edits (editor/edits.py: parse + edit)")
        for label, fn in _text_edits(n).items():
            _row(label, _time(partial(fn, text), runs))
        print(" for comparison: ruamel.yaml round trip of the whole file")
        loaded = rt_load(text)
        few = max(3, runs // 5)
        _row("ruamel load (typ=rt)", _time(partial(rt_load, text), few))
        _row("ruamel dump", _time(partial(rt_dump, loaded, DEFAULT_STYLE), few))
    print(f"\ngoals (p95 ≤ {GOAL_MS:.0f} ms on 200 steps): {'met' if ok else 'NOT met'}")
    return ok


def profile() -> None:
    """Where the time of the 200-step open and of a kept-document rename goes."""
    text = generate(200)
    rename = _edits(200)["rename (references follow)"]
    docs = [_kept(text)() for _ in range(10)]

    def opens() -> None:
        for _ in range(10):
            _open(text)

    def renames() -> None:
        for doc in docs:
            rename(doc)

    for label, fn in (("open x10", opens), ("rename on a kept document x10", renames)):
        prof = cProfile.Profile()
        prof.runcall(fn)
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(18)
        print(f"--- {label}\n{out.getvalue()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        profile()
        return 0
    return 0 if run(max(3, args.runs)) else 1


if __name__ == "__main__":
    sys.exit(main())
