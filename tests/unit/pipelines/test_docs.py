"""docs/pipeline-format.md: its reference section is the one the spec generates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from elexirion_app import cli_docs
from elexirion_app.pipelines.checks import tables
from elexirion_app.pipelines.spec import docs
from elexirion_app.pipelines.spec import introspect as si
from elexirion_app.pipelines.spec.models import STEP_MODELS, StepBase

DOC = Path(__file__).resolve().parents[3] / "docs" / "pipeline-format.md"


def generated_part(text: str) -> str:
    return text.split(docs.BEGIN, 1)[1].split(docs.END, 1)[0]


def test_the_committed_docs_equal_the_generated_text() -> None:
    text = DOC.read_text("utf-8")
    assert docs.render_document(text) == text, (
        "docs/pipeline-format.md is out of date: run python -m elexirion_app.pipelines.spec.docs"
    )
    assert cli_docs.main(["--check"]) == 0


def test_check_reports_an_outdated_file_without_writing_and_write_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "format.md"
    stale = f"# Mine\n\nmy own words\n\n{docs.BEGIN}\nold table\n{docs.END}\n\nafter\n"
    path.write_text(stale, "utf-8")
    assert cli_docs.main(["--check", "--path", str(path)]) == 1
    assert "out of date" in capsys.readouterr().out
    assert path.read_text("utf-8") == stale
    assert cli_docs.main(["--path", str(path)]) == 0
    written = path.read_text("utf-8")
    assert written.startswith("# Mine\n\nmy own words\n\n" + docs.BEGIN)
    assert written.endswith(docs.END + "\n\nafter\n")
    assert "old table" not in written
    assert generated_part(written).strip() == docs.render_reference().strip()
    assert cli_docs.main(["--check", "--path", str(path)]) == 0


@pytest.mark.parametrize(
    "text",
    ["no markers", f"{docs.END}\n{docs.BEGIN}\n", f"{docs.BEGIN}\n{docs.BEGIN}\n{docs.END}\n"],
)
def test_missing_or_misordered_markers_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(docs.DocsError):
        docs.render_document(text)
    path = tmp_path / "x.md"
    path.write_text(text, "utf-8")
    assert cli_docs.main(["--check", "--path", str(path)]) == 2
    assert cli_docs.main(["--path", str(tmp_path / "absent.md")]) == 2


def _anchors(text: str) -> set[str]:
    """The anchors of every heading outside code blocks (GitHub adds -1, -2 to repeats)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        base = docs.slug(line.lstrip("#"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_every_link_inside_the_document_reaches_a_heading() -> None:
    text = DOC.read_text("utf-8")
    anchors = _anchors(text)
    targets = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert targets
    assert targets - anchors == set()


def test_generated_headings_do_not_repeat_a_hand_written_one() -> None:
    text = DOC.read_text("utf-8")
    mine = _anchors(generated_part(text))
    before = _anchors(text.split(docs.BEGIN, 1)[0])
    assert mine & before == set()


def test_the_reference_lists_every_step_type_key_and_value() -> None:
    ref = docs.render_reference()
    for model in STEP_MODELS:
        kind = si.tag(model)
        section = ref.split(f"#### `{kind}` step\n", 1)[1].split("\n#### ", 1)[0]
        for key in si.own_keys(model, StepBase):
            assert f"| `{key}` |" in section, (kind, key)
        assert (model.__doc__ or "").split()[0] in section
    for key in si.keys(StepBase):
        assert f"| `{key}` |" in ref.split("### Every step", 1)[1]
    for part, (required, optional) in tables.PROMPT_PART_FIELDS.items():
        section = ref.split(f"#### `{part}` prompt part\n", 1)[1].split("\n#### ", 1)[0]
        for key in (*required, *optional):
            assert f"| `{key}` |" in section, (part, key)
    for value in (*tables.PRESETS, *tables.BACKOFF, *tables.CONVERT_FORMATS, *tables.SET_SCOPES):
        assert f"`{value}`" in ref, value
    assert "*Deprecated: write `variables`.*" in ref
    assert "**required**" in ref
