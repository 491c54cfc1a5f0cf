"""Test helpers: the pipeline files, the comments of a YAML text, the steps of its data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support import conformance

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "pipelines"


def pipeline_files() -> list[Path]:
    """Every conformance file (required on CI) and every shipped pipeline."""
    files = sorted(conformance.require().rglob("*.yaml"))
    assert len(files) >= 25
    shipped = sorted(SHIPPED.rglob("*.yaml"))
    assert shipped
    return files + shipped


def comments(text: str) -> Counter[str]:
    """Every comment of a YAML text (see ``comment_lines``)."""
    return Counter(c for _, c in comment_lines(text))


def comment_lines(text: str) -> list[tuple[int, str]]:
    """(0-based line, comment) for every comment of a YAML text (``# ...`` to the end of its
    line, trailing space cut), found where the scanner saw no token, so ``#`` inside a string
    or a block scalar is not one.
    """
    lines = text.splitlines()
    covered: dict[int, list[tuple[int, int]]] = {}
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        start, end = token.start_mark, token.end_mark
        for line in range(start.line, end.line + 1):
            a = start.column if line == start.line else 0
            b = end.column if line == end.line else 1 << 30
            covered.setdefault(line, []).append((a, b))
    found: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        spans = covered.get(number, [])
        pos = line.find("#")
        while pos >= 0:
            inside = any(a <= pos < b for a, b in spans)
            if not inside and (pos == 0 or line[pos - 1] in " \t"):
                found.append((number, line[pos:].rstrip()))
                break
            pos = line.find("#", pos + 1)
    return found


def count_steps(data: Any) -> int:
    """How many step maps (and parallel tasks) a document holds, counted independently."""
    workflow = data.get("workflow") if isinstance(data, Mapping) else None
    if not isinstance(workflow, Mapping):
        return 0
    total = 0
    lists: list[Any] = [workflow.get("steps")]
    while lists:
        items = lists.pop()
        if not isinstance(items, list):
            continue
        for step in items:
            if not isinstance(step, Mapping):
                continue
            total += 1
            kind = step.get("type")
            if kind in ("for_loop", "while_loop"):
                lists.append(step.get("steps"))
            elif kind == "parallel_claude":
                tasks = step.get("parallel_tasks")
                total += (
                    sum(1 for t in tasks if isinstance(t, Mapping))
                    if isinstance(tasks, list)
                    else 0
                )
            elif kind == "pipeline" and isinstance(step.get("pipeline"), Mapping):
                inline = step["pipeline"]
                inner = inline.get("workflow") if "steps" not in inline else inline
                if isinstance(inner, Mapping):
                    lists.append(inner.get("steps"))
    return total


def top_steps(data: Mapping[str, Any]) -> list[Any]:
    steps = data["workflow"]["steps"]
    assert isinstance(steps, list)
    return steps
