"""The loader's two ways to compose: libyaml's C composer (text without anchors, within the
caps) and the capped Python composer give the same data, lines and problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elexirion_app.core.errors import PipelineValidationError
from elexirion_app.pipelines import loader
from tests.support import conformance

ROOT = Path(__file__).resolve().parents[3]


def outcome(text: str) -> tuple[Any, ...]:
    try:
        doc = loader.load_text(text, "p.yaml")
    except PipelineValidationError as exc:
        return ("refused", [(p.message, p.line, p.hint) for p in exc.problems])
    return ("loaded", doc.workflow, doc.lines)


def both_ways(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = outcome(text)
    with monkeypatch.context() as m:
        m.setattr(loader, "_compose_plain", lambda _text: None)
        slow = outcome(text)
    return fast, slow


def test_shipped_pipelines_take_the_c_composer_and_load_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = sorted((ROOT / "pipelines").rglob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        if "&" not in text:
            assert loader._compose_plain(text) is not None, path
        fast, slow = both_ways(text, monkeypatch)
        assert fast == slow, path


def test_pipeline_ex_files_load_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in sorted(conformance.require().rglob("*.yaml")):
        fast, slow = both_ways(path.read_text(encoding="utf-8"), monkeypatch)
        assert fast == slow, path


@pytest.mark.parametrize(
    "text",
    [
        "- " * 100 + "x\n",  # nesting just within MAX_DEPTH, then just beyond
        "- " * 101 + "x\n",
        "".join("  " * i + f"k{i}:\n" for i in range(99)),
        "".join("  " * i + f"k{i}:\n" for i in range(100)),
        "[" + ",".join(["1"] * 200_001) + "]",  # more values than MAX_EXPANDED_NODES
        "workflow:\n  name: a\n  name: b\n",
        "workflow:\n  name: !!python/object/apply:os.system ['true']\n",
        "workflow: {name: x}\n---\nworkflow: {name: y}\n",
        "workflow:\n  steps: *undefined\n",
        "",
        "workflow: [\n",
    ],
)
def test_edge_cases_are_judged_the_same(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both_ways(text, monkeypatch)
    assert fast == slow


BITS = [
    *"abc:-[]{},*!|>'\"#\n ?%@`\t\\",
    "workflow:",
    "  steps:",
    "\n  - ",
    "\n    ",
    "name: x",
    "*a",
    "<<: ",
    "!!python/object:os.system ",
    "!!binary ",
    "!!str ",
    "2020-13-45",
    "---\n",
    "\x00",
    "\ufeff",
    "é",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(BITS), max_size=40).map("".join))
def test_random_texts_are_judged_the_same(text: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = both_ways(text, monkeypatch)
    assert fast == slow
