"""The import-layer rule of DESIGN.md, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENGINE = [
    "elexirion_app.core.errors",
    "elexirion_app.core.types",
    "elexirion_app.core.events",
    "elexirion_app.core.models",
    "elexirion_app.core.paths",
    "elexirion_app.pipelines.executor",
    "elexirion_app.pipelines.validate",
    "elexirion_app.providers.registry",
    "elexirion_app.providers.mock",
    "elexirion_app.services.chat.chat",
    "elexirion_app.services.chat.agent_turn",
    "elexirion_app.agent.router",
    "elexirion_app.agent.genesis",
    "elexirion_app.providers.anthropic_provider",
    "elexirion_app.providers.gemini_provider",
    "elexirion_app.core.pricing",
]


def _loaded_after(module: str) -> set[str]:
    code = (
        "import importlib, sys, json\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    import json

    return set(json.loads(out))


@pytest.mark.parametrize("module", ENGINE)
def test_engine_layers_never_load_reflex_or_dspy(module: str) -> None:
    loaded = _loaded_after(module)
    assert not any(m == "reflex" or m.startswith("reflex.") for m in loaded), module
    assert "dspy" not in loaded, module


def test_core_loads_no_provider_sdk() -> None:
    loaded = _loaded_after("elexirion_app.core.types")
    assert not {"anthropic", "google.genai", "litellm"} & loaded
