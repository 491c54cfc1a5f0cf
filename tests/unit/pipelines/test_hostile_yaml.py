"""Hostile pipeline files: each gives one clear problem, never a crash or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elexirion_app.core.errors import PipelineValidationError, Problem
from elexirion_app.pipelines.loader import MAX_FILE_BYTES, load_file, load_text
from elexirion_app.pipelines.validate import validate_document, validate_file

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
workflow: {name: x, steps: *i}
"""


def only_problem(text: str) -> Problem:
    with pytest.raises(PipelineValidationError) as info:
        load_text(text, "hostile.yaml")
    problems = info.value.problems
    assert len(problems) == 1
    assert problems[0].file == "hostile.yaml"
    return problems[0]


def file_problem(path: Path) -> Problem:
    problems = validate_file(path)
    assert len(problems) == 1 and problems[0].severity == "error"
    return problems[0]


def test_alias_bomb_is_refused() -> None:
    problem = only_problem(BILLION_LAUGHS)
    assert "alias bomb" in problem.message
    assert problem.line is not None


def test_many_aliases_are_refused() -> None:
    text = "x: &a 1\ny: [" + ", ".join(["*a"] * 5000) + "]\n"
    problem = only_problem(text)
    assert "aliases" in problem.message and problem.line == 2


def test_recursive_alias_is_refused() -> None:
    problem = only_problem("workflow: &w\n  name: x\n  self: *w\n")
    assert "recursive" in problem.message


def test_ten_megabyte_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("workflow:\n  name: x\n" + "# padding\n" * 1_000_000)
    assert path.stat().st_size > 10_000_000
    problem = file_problem(path)
    assert "larger than 2 MB" in problem.message


def test_big_text_is_refused() -> None:
    problem = only_problem("a: " + "x" * (MAX_FILE_BYTES + 1))
    assert "larger than" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000,
        "[" * 10_000 + "]" * 10_000,
        "{a: " * 5_000 + "1" + "}" * 5_000,
        "".join("  " * i + f"k{i}:\n" for i in range(500)),
        "- " * 5_000 + "x\n",
        "".join("  " * i + "-\n" for i in range(500)),
    ],
)
def test_deep_nesting_is_refused(text: str) -> None:
    problem = only_problem(text)
    assert "nest" in problem.message


def test_python_tags_are_refused() -> None:
    problem = only_problem("workflow:\n  name: !!python/object/apply:os.system ['touch pwned']\n")
    assert "Python YAML tag" in problem.message and problem.line == 2
    assert not Path("pwned").exists()


@pytest.mark.parametrize(
    "tag",
    ["!!python/name:os.system", "!!python/object:object", "!!python/module:os", "!custom"],
)
def test_other_tags_are_refused(tag: str) -> None:
    problem = only_problem(f"workflow:\n  steps: {tag} x\n")
    assert "tag" in problem.message and problem.line == 2


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"workflow:\n  name: caf\xe9\n")
    problem = file_problem(path)
    assert "not UTF-8" in problem.message and problem.line == 2


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"workflow:\n\x00\x01\x02")
    assert "binary" in file_problem(path).message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert "empty" in file_problem(path).message
    path.write_text("# only a comment\n")
    assert "empty" in file_problem(path).message


def test_top_level_list(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- name: a\n  type: claude\n")
    problem = file_problem(path)
    assert "list" in problem.message and "workflow:" in problem.hint


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert "directory" in file_problem(tmp_path).message


NESTED = """\
workflow:
  name: {name}
  steps:
    - name: include
      type: pipeline
      pipeline_file: {target}
"""


def test_cycle_of_nested_pipeline_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(NESTED.format(name="a", target="b.yaml"))
    (tmp_path / "b.yaml").write_text(NESTED.format(name="b", target="a.yaml"))
    problems = validate_file(tmp_path / "a.yaml")
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1
    assert "cycle: a.yaml → b.yaml → a.yaml" in errors[0].message
    assert errors[0].file.endswith("b.yaml") and errors[0].line == 6


def test_self_including_pipeline(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(NESTED.format(name="a", target="./a.yaml"))
    errors = [p for p in validate_file(tmp_path / "a.yaml") if p.severity == "error"]
    assert len(errors) == 1 and "cycle" in errors[0].message


def test_long_chain_of_nested_files_is_capped(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"p{i}.yaml").write_text(NESTED.format(name=f"p{i}", target=f"p{i + 1}.yaml"))
    (tmp_path / "p30.yaml").write_text(
        "workflow:\n  name: end\n  steps:\n    - {name: s, type: set_variable, variables: {a: 1}}\n"
    )
    errors = [p for p in validate_file(tmp_path / "p0.yaml") if p.severity == "error"]
    assert len(errors) == 1 and "nested deeper than" in errors[0].message


def test_nested_file_with_hostile_content_reports_it(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(NESTED.format(name="a", target="b.yaml"))
    (tmp_path / "b.yaml").write_text(BILLION_LAUGHS)
    errors = [p for p in validate_file(tmp_path / "a.yaml") if p.severity == "error"]
    messages = " | ".join(e.message for e in errors)
    assert "cannot be loaded" in messages and "alias bomb" in messages


def test_load_file_refuses_big_file_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.seek(50_000_000)
        fh.write(b"x")
    with pytest.raises(PipelineValidationError, match="larger than"):
        load_file(path)


YAML_BITS = [
    *"abc:-[]{},&*!|>'\"#\n ?%@`\t\\",
    "workflow:",
    "  steps:",
    "\n  - ",
    "&a ",
    "*a",
    "<<: ",
    "!!python/object:os.system ",
    "!!binary ",
    "2020-13-45",
    "---\n",
    "\x00",
    "\ufeff",
    "é",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(YAML_BITS), max_size=40).map("".join))
def test_property_random_yaml_only_raises_validation_error(text: str) -> None:
    try:
        doc = load_text(text, "fuzz.yaml")
    except PipelineValidationError as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)
    else:
        assert isinstance(doc.workflow, dict)
        validate_document(doc)
