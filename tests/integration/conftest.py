"""Serve the real app (``reflex run --env prod``) on a test port with a fresh database, and
launch Debian's Chromium through Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import appserver

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PORT = int(os.environ.get("ELEXIRION_TEST_PORT", "3137"))
SCREENSHOTS = ROOT / "screenshots"


@pytest.fixture(scope="session")
def app_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served app's data folder (its database is ``app.db``; the CLI can use it)."""
    return tmp_path_factory.mktemp("appdata")


@pytest.fixture(scope="session")
def app_url(app_data: Path) -> Iterator[str]:
    data = app_data
    limits = {"ELEXIRION_LIMIT_REGISTER_CLIENT": "60/minute"}
    with appserver.serving(data, PORT, ELEXIRION_CHAT_TOKEN_DELAY_S="0.03", **limits):
        yield f"http://localhost:{PORT}"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
