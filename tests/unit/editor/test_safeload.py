"""The editor's fast open path accepts exactly what the loader accepts, with the same data,
and leaves every refusal (and its message) to the loader."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elexirion_app.core.errors import PipelineValidationError
from elexirion_app.editor import safeload
from elexirion_app.pipelines.loader import MAX_DEPTH, parse_yaml
from tests.unit.editor.helpers import pipeline_files

HOSTILE = {
    "deep": "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n",
    "just_deep_enough": "a: " + "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3) + "\n",
    "many_values": "a: [" + ", ".join(["1"] * 200_100) + "]\n",
    "python_tag": "a: !!python/object/apply:os.system ['true']\n",
    "other_tag": "a: !custom 1\n",
    "duplicate": "a: 1\nb: 2\na: 3\n",
    "int_keys": "1: a\n2: b\n",
    "duplicate_int_keys": "1: a\n1: b\n",
    "merge": "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n",
    "bomb": "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
    "undefined_alias": "a: *nope\n",
    "syntax": "a: [1, 2\n",
    "tabs": "a:\n\tb: 1\n",
    "empty": "",
    "comment_only": "# nothing\n",
    "list_root": "- a\n- b\n",
    "binary": "a: !!binary aGVsbG8=\n",
    "timestamps": "a: 2024-01-01\nb: 2024-01-01T10:00:00Z\n",
    "amp_in_text": "a: 'R&D'\n",
}


def _loader(text: str) -> tuple[str, Any]:
    try:
        return "ok", parse_yaml(text, "<editor>")[0]
    except PipelineValidationError as exc:
        return "refused", [p.format() for p in exc.problems]


def _fast(text: str) -> tuple[str, Any]:
    try:
        return "ok", safeload.load(text)
    except PipelineValidationError as exc:
        return "refused", [p.format() for p in exc.problems]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_the_fast_path_agrees_with_the_loader(name: str) -> None:
    assert _fast(HOSTILE[name]) == _loader(HOSTILE[name])


def test_every_pipeline_file_reads_the_same_both_ways_and_takes_the_fast_path() -> None:
    for path in pipeline_files():
        text = path.read_text(encoding="utf-8")
        assert _fast(text) == _loader(text), path.name
        assert safeload._fast(text) is not safeload._DECLINED, path.name


_pieces = st.sampled_from(
    [
        "a",
        "b",
        ":",
        " ",
        "\n",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "#",
        "&x",
        "*x",
        "!!str",
        "!!python/name:os.system",
        "<<",
        "|",
        ">",
        "  ",
        "1",
        "yes",
        "~",
        "\t",
        "? ",
        "---",
        "...",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=40).map("".join))
def test_random_text_reads_the_same_both_ways(text: str) -> None:
    assert _fast(text) == _loader(text)
