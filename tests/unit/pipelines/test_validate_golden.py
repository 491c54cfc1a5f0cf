"""Golden snapshot: every problem (severity, file, line, path, message, hint) that validation
reports for each pipeline_ex conformance file and each shipped pipeline, normal and strict.

The snapshot was generated from the validator before it was split by concern and driven by the
typed spec; any change to what a real file reports shows here. To regenerate after a deliberate
change: ``ELEXIRION_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/pipelines/test_validate_golden.py``
and review the diff of the JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.core.errors import Problem
from elexirion_app.pipelines.validate import validate_file
from tests.support import conformance

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "pipelines"
GOLDEN = Path(__file__).parent / "golden" / "validate_problems.json"
UPDATE_VAR = "ELEXIRION_UPDATE_GOLDEN"


def _rel(file: str, roots: dict[str, Path]) -> str:
    """A problem's file named relative to the conformance suite or the repository."""
    if not file:
        return file
    path = Path(file).resolve()
    for label, root in roots.items():
        if path.is_relative_to(root):
            return f"{label}/{path.relative_to(root).as_posix()}"
    return file


def _row(problem: Problem, roots: dict[str, Path]) -> dict[str, Any]:
    return {
        "severity": problem.severity,
        "file": _rel(problem.file, roots),
        "line": problem.line,
        "path": problem.path,
        "message": problem.message,
        "hint": problem.hint,
    }


def snapshot(suite: Path) -> dict[str, Any]:
    roots = {"conformance": suite.resolve(), "repo": ROOT}
    files = {
        **{f"conformance/{p.relative_to(suite).as_posix()}": p for p in suite.rglob("*.yaml")},
        **{f"repo/{p.relative_to(ROOT).as_posix()}": p for p in SHIPPED.rglob("*.yaml")},
    }
    out: dict[str, Any] = {}
    for mode, strict in (("normal", False), ("strict", True)):
        out[mode] = {
            key: [_row(p, roots) for p in validate_file(path, strict=strict)]
            for key, path in sorted(files.items())
        }
    return out


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    return snapshot(conformance.require())


def test_every_conformance_and_shipped_file_reports_exactly_the_golden_problems(
    current: dict[str, Any],
) -> None:
    if os.environ.get(UPDATE_VAR) == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(current, indent=1, ensure_ascii=False) + "\n", "utf-8")
    golden = json.loads(GOLDEN.read_text("utf-8"))
    assert set(current["normal"]) == set(golden["normal"])
    for mode in ("normal", "strict"):
        for key, rows in golden[mode].items():
            assert current[mode][key] == rows, (mode, key)


def test_the_golden_snapshot_covers_the_whole_suite_and_many_problems() -> None:
    golden = json.loads(GOLDEN.read_text("utf-8"))
    files = golden["normal"]
    assert sum(k.startswith("conformance/") for k in files) >= 25
    assert sum(k.startswith("repo/pipelines/") for k in files) >= 4
    rows = [r for rs in files.values() for r in rs]
    assert {r["severity"] for r in rows} == {"error", "warning"}
    assert all(r["line"] is not None for r in rows)
