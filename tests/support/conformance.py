"""Where the pipeline_ex conformance suite lives, and what happens when it is not there.

The suite is not part of this repository: by default it is ``../shared/conformance`` next to
the checkout; ``ELEXIRION_CONFORMANCE_DIR`` points elsewhere. When it is absent the tests that
need it are skipped with :data:`MISSING_MARK` in the reason (the summary hook in
``tests/conftest.py`` counts them and says so loudly), or fail when
``ELEXIRION_REQUIRE_CONFORMANCE=1`` (set by ``.ci/run`` on CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT.parent / "shared" / "conformance"
DIR_VAR = "ELEXIRION_CONFORMANCE_DIR"
REQUIRE_VAR = "ELEXIRION_REQUIRE_CONFORMANCE"
# Every skip for a missing suite carries this in its reason.
MISSING_MARK = "conformance suite not found"


def conformance_dir() -> Path:
    """The conformance folder (it holds ``pipeline_ex/`` and the README of expected results)."""
    configured = os.environ.get(DIR_VAR)
    return Path(configured).resolve() if configured else DEFAULT_DIR


def pipeline_ex_dir() -> Path:
    """pipeline_ex's YAML files inside the conformance folder."""
    return conformance_dir() / "pipeline_ex"


def display_dir() -> str:
    """The folder as the user should read it: relative to the repository when it is beside it."""
    folder = conformance_dir()
    if folder.is_relative_to(ROOT.parent):
        return os.path.relpath(folder, ROOT)
    return str(folder)


def is_present() -> bool:
    return pipeline_ex_dir().is_dir()


def required() -> bool:
    return os.environ.get(REQUIRE_VAR, "").strip().lower() in {"1", "true", "yes"}


def require() -> Path:
    """pipeline_ex's folder; skips the calling test when it is absent, fails it when required."""
    folder = pipeline_ex_dir()
    if folder.is_dir():
        return folder
    message = f"{MISSING_MARK}: {folder} is absent (set {DIR_VAR})"
    if required():
        pytest.fail(f"{message}; {REQUIRE_VAR} is set, so this is a failure", pytrace=False)
    pytest.skip(message)
