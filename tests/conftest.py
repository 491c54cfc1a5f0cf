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
