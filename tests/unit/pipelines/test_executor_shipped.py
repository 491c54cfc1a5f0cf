"""The shipped pipelines validate cleanly, declare their inputs, and run offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.pipelines.defaults import declared_inputs
from elexirion_app.pipelines.executor import run_pipeline
from elexirion_app.pipelines.loader import load_file
from elexirion_app.pipelines.validate import validate_file
from tests.unit.pipelines.engine_fakes import CountingProvider

PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"
SHIPPED = sorted(p.relative_to(PIPELINES).as_posix() for p in PIPELINES.rglob("*.yaml"))
INPUTS: dict[str, dict[str, Any]] = {
    "refactoring.yaml": {"file": "src/app.py"},
    "genesis.yaml": {"description": "Summarise every markdown file of the workspace"},
}


def test_the_expected_pipelines_are_shipped() -> None:
    assert {"code_analysis.yaml", "refactoring.yaml", "genesis.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("rel", SHIPPED)
async def test_shipped_pipeline(rel: str, tmp_path: Path) -> None:
    problems = [
        p
        for p in validate_file(PIPELINES / rel)
        if "unknown workflow key 'inputs'" not in p.message  # our addition to the format
    ]
    assert not problems, [p.format() for p in problems]
    doc = load_file(PIPELINES / rel)
    assert doc.workflow.get("description")
    specs = declared_inputs(doc.workflow)
    assert specs and all(s["description"] for s in specs)
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "app.py").write_text("def add(a, b):\n    return a + b\n")
    provider = CountingProvider()
    outcome = await run_pipeline(
        doc,
        inputs=INPUTS.get(rel, {}),
        workspace=ws,
        output_dir=tmp_path / "out",
        provider_for=provider,
    )
    assert outcome.status == "succeeded", outcome.error
    assert provider.calls >= 2
    written = list((tmp_path / "out").glob("*.json"))
    assert written and all(json.loads(p.read_text())["success"] for p in written)


async def test_code_analysis_gives_claude_the_file_list_and_read_tools(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "mod.py").write_text("x = 1\n")
    (ws / "notes.md").write_text("not python")
    provider = CountingProvider()
    outcome = await run_pipeline(
        load_file(PIPELINES / "code_analysis.yaml"),
        inputs={},
        workspace=ws,
        output_dir=tmp_path / "out",
        provider_for=provider,
    )
    assert outcome.steps["list_sources"]["files"] == ["pkg/mod.py"]
    analyse = provider.requests[0]
    assert analyse.allowed_tools == ("Read", "Glob", "Grep")
    assert "pkg/mod.py" in analyse.prompt and analyse.workspace == ws.resolve()
