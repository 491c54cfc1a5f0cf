"""Fixtures: the fake model servers on 127.0.0.1 (real SDKs are pointed at them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_gemini import FakeGemini


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    server = FakeGemini()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDKs must never pick up a developer's real credentials or endpoints."""
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
