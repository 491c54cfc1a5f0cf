"""The conformance suite's location is configurable; without it the run says so, or fails on CI.

Each case runs pytest in a subprocess on the conformance tests of ``test_validate.py`` and
``test_conformance_run.py`` with ``ELEXIRION_CONFORMANCE_DIR`` pointing at a missing folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import conformance

ROOT = Path(__file__).resolve().parents[2]
TARGETS = (
    "tests/unit/pipelines/test_validate.py::test_conformance_split",
    "tests/unit/pipelines/test_conformance_run.py::test_conformance_file",
    "tests/unit/pipelines/test_conformance_run.py::test_files_without_a_workflow_root_are_refused",
)


def _pytest(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != conformance.REQUIRE_VAR}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TARGETS],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_missing_suite_is_skipped_with_a_loud_summary(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-conformance"
    run = _pytest(ELEXIRION_CONFORMANCE_DIR=str(missing))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"CONFORMANCE SUITE NOT RUN: {missing} not found (2 tests skipped)" in run.stdout
    assert "1 passed, 2 skipped" in run.stdout  # the test that needs no suite still runs


def test_missing_suite_fails_when_required(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-conformance"
    run = _pytest(
        ELEXIRION_CONFORMANCE_DIR=str(missing),
        ELEXIRION_REQUIRE_CONFORMANCE="1",
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "ELEXIRION_REQUIRE_CONFORMANCE is set, so this is a failure" in run.stdout
    assert "1 passed, 2 errors" in run.stdout
    assert "CONFORMANCE SUITE NOT RUN" not in run.stdout


def test_default_location_is_beside_the_checkout() -> None:
    env = {k: v for k, v in os.environ.items() if k != conformance.DIR_VAR}
    code = "from tests.support import conformance as c; print(c.display_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "../shared/conformance"
