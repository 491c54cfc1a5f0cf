"""Shared fixtures: a fresh database per test, settings re-read from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the app at a new SQLite database with every table created."""
    from elexirion_app import config
    from elexirion_app.db import engine as db_engine

    url = f"sqlite:///{tmp_path / 'test.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ELEXIRION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ELEXIRION_CHAT_TOKEN_DELAY_S", "0")
    config.get_settings.cache_clear()
    db_engine.create_all(db_engine.get_engine(url))
    yield url
    eng = db_engine._engines.pop(url, None)
    if eng is not None:
        eng.dispose()
    config.get_settings.cache_clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when the conformance suite was skipped because its folder is absent."""
    from tests.support import conformance

    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if conformance.MISSING_MARK in str(getattr(report, "longrepr", ""))
    ]
    if not skipped:
        return
    terminalreporter.write_sep("!", "CONFORMANCE SUITE NOT RUN", yellow=True, bold=True)
    terminalreporter.write_line(
        f"CONFORMANCE SUITE NOT RUN: {conformance.display_dir()} not found "
        f"({len(skipped)} {'test' if len(skipped) == 1 else 'tests'} skipped)",
        yellow=True,
        bold=True,
    )
    terminalreporter.write_line(
        f"Point {conformance.DIR_VAR} at the folder; with {conformance.REQUIRE_VAR}=1 "
        "(set by .ci/run on CI) a missing suite fails the run.",
        yellow=True,
    )
    terminalreporter.write_sep("!", yellow=True, bold=True)
