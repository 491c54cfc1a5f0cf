"""The pipeline catalogue: shipped files, user files with keywords, broken files skipped."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from elexirion_app.agent.catalogue import InputSpec, load_catalogue
from elexirion_app.agent.router import route_offline

PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"

TRANSLATE = """\
workflow:
  name: translate_docs
  description: Translate a document of the workspace into another language.
  metadata:
    keywords: [translate, translation, french, german]
  inputs:
    - name: document
      description: Path of the document to translate
      required: true
    - name: language
      description: Target language
      default: French
  steps:
    - name: translate
      type: claude
      prompt:
        - type: static
          content: "Translate {{inputs.document}} into {{inputs.language}}."
"""


def test_shipped_pipelines_are_in_the_catalogue() -> None:
    entries = {e.name: e for e in load_catalogue([PIPELINES])}
    assert {"code_analysis", "refactoring", "genesis"} <= set(entries)
    analysis = entries["code_analysis"]
    assert analysis.description.startswith("Analyse the code")
    assert analysis.path == PIPELINES / "code_analysis.yaml"
    assert analysis.path_input("dir") == analysis.input("target")
    assert analysis.path_input("glob") == analysis.input("pattern")
    assert "lint" in analysis.keywords and "quality" in analysis.keywords
    refactoring = entries["refactoring"]
    assert refactoring.required_inputs == ("file",)
    assert refactoring.path_input("file") == refactoring.input("file")
    assert refactoring.defaults() == {"goal": refactoring.input("goal").default}  # type: ignore[union-attr]
    listing = analysis.to_dict()
    assert listing["name"] == "code_analysis"
    assert {
        "name": "target",
        "description": "Folder inside the workspace to analyse",
        "required": False,
        "default": ".",
    } in listing["inputs"]


def test_broken_and_duplicate_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a_good.yaml").write_text(TRANSLATE)
    (tmp_path / "b_duplicate.yml").write_text(TRANSLATE)
    (tmp_path / "c_bad_yaml.yaml").write_text("workflow:\n  name: x\n   steps: [\n")
    (tmp_path / "d_no_root.yaml").write_text("name: lonely\nsteps: []\n")
    (tmp_path / "e_no_name.yaml").write_text("workflow:\n  steps: []\n")
    (tmp_path / "f_python_tag.yaml").write_text("workflow: !!python/object:os.system {}\n")
    (tmp_path / "notes.txt").write_text("not a pipeline")
    with caplog.at_level(logging.WARNING, logger="elexirion_app.agent.catalogue"):
        entries = load_catalogue([tmp_path, tmp_path / "missing"])
    assert [e.name for e in entries] == ["translate_docs"]
    warned = caplog.text
    for name in (
        "b_duplicate.yml",
        "c_bad_yaml.yaml",
        "d_no_root.yaml",
        "e_no_name.yaml",
        "f_python_tag.yaml",
        "missing",
    ):
        assert name in warned


def test_a_user_pipeline_with_keywords_is_routable(tmp_path: Path) -> None:
    (tmp_path / "translate.yaml").write_text(TRANSLATE)
    catalogue = load_catalogue([PIPELINES, tmp_path / "translate.yaml"])
    entry = next(e for e in catalogue if e.name == "translate_docs")
    assert entry.keywords[:2] == ("translate", "translation")
    assert entry.input("document") == InputSpec(
        "document", "Path of the document to translate", True, None
    )
    decision = route_offline("please translate docs/intro.md", catalogue)
    assert decision.kind == "run" and decision.pipeline == "translate_docs"
    assert decision.inputs == {"document": "docs/intro.md", "language": "French"}


def test_the_agent_layer_loads_no_reflex_or_dspy() -> None:
    code = (
        "import sys, json\n"
        "import elexirion_app.agent.router, elexirion_app.agent.session\n"
        "import elexirion_app.agent.genesis, elexirion_app.agent.catalogue\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    loaded = set(json.loads(out))
    assert not any(m == "reflex" or m.startswith("reflex.") for m in loaded)
    assert "dspy" not in loaded
