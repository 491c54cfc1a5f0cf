"""registry.get_provider: live providers with keys (cached), offline model without."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from elexirion_app.config import Settings
from elexirion_app.core.types import LLMRequest
from elexirion_app.providers import registry
from elexirion_app.providers.base import Provider, complete
from elexirion_app.providers.mock import MockProvider
from tests.fakes.fake_anthropic import FakeAnthropic, text
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_gemini import text as gtext


def settings(**kw: object) -> Settings:
    base = Settings(
        database_url="sqlite://",
        redis_url=None,
        data_dir=Path("."),
        anthropic_api_key=None,
        gemini_api_key=None,
        anthropic_base_url=None,
        gemini_base_url=None,
        chat_token_delay_s=0.0,
        session_days=1,
        max_message_chars=100,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    registry.clear_cache()


def test_offline_without_keys() -> None:
    for kind in ("claude", "gemini", "gemini_instructor", "chat"):
        p = registry.get_provider(kind, settings(), token_delay_s=0.01)
        assert isinstance(p, MockProvider) and p.offline and p.token_delay_s == 0.01


async def test_live_providers_with_keys_are_cached(
    fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> None:
    s = settings(
        anthropic_api_key="ak",
        anthropic_base_url=fake_anthropic.url,
        gemini_api_key="gk",
        gemini_base_url=fake_gemini.url,
    )
    claude = registry.get_provider("claude", s)
    gemini = registry.get_provider("gemini_instructor", s)
    assert isinstance(claude, Provider) and not claude.offline and claude.name == "claude"
    assert gemini.name == "gemini" and not gemini.offline
    assert registry.get_provider("claude", s) is claude
    other = registry.get_provider("claude", dataclasses.replace(s, anthropic_api_key="other"))
    assert other is not claude

    fake_anthropic.queue(text("live claude"))
    fake_gemini.queue(gtext("live gemini"))
    assert (await complete(claude, LLMRequest.from_prompt("hi"))).text == "live claude"
    resp = await complete(gemini, LLMRequest.from_prompt("hi", provider="gemini"))
    assert resp.text == "live gemini"


def test_registry_import_loads_no_sdk() -> None:
    code = (
        "import sys, elexirion_app.providers.registry as r\n"
        "print(any(m in sys.modules for m in ('anthropic', 'google.genai')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
