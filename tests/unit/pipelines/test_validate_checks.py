"""The shape of validation: checks split by concern, no import cycle, the old names kept."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from elexirion_app.pipelines import validate
from elexirion_app.pipelines.loader import load_text

ROOT = Path(__file__).resolve().parents[3]
CHECKS = ROOT / "elexirion_app" / "pipelines" / "checks"
PACKAGE = "elexirion_app.pipelines.checks"
ORCHESTRATOR = "elexirion_app.pipelines.validate"

# Every public name ``pipelines/validate.py`` had before it was split; callers import them.
PUBLIC_BEFORE_SPLIT = [
    "STEP_TYPES",
    "TEST_STEP_TYPES",
    "CLAUDE_TYPES",
    "ENHANCED_TYPES",
    "GEMINI_TYPES",
    "LLM_TYPES",
    "LOOP_TYPES",
    "NO_PROMPT_TYPES",
    "PROMPT_PART_FIELDS",
    "TOP_KEYS",
    "TOP_IGNORED",
    "DEFAULTS_KEYS",
    "COMMON_STEP_KEYS",
    "IGNORED_STEP_KEYS",
    "ENHANCED_KEYS",
    "STEP_KEYS",
    "CLAUDE_OPTION_KEYS",
    "PRESETS",
    "OUTPUT_FORMATS",
    "EXTRACTION_FORMATS",
    "POST_PROCESSING",
    "BACKOFF",
    "FALLBACK_ACTIONS",
    "SET_SCOPES",
    "TRANSFORM_OPS",
    "AGGREGATE_FUNCTIONS",
    "FILE_OPS",
    "CONVERT_FORMATS",
    "SET_VARIABLE_RESULT",
    "MAX_WHILE_ITERATIONS",
    "MAX_NESTED_DEPTH",
    "LOOP_CONTEXT_KEYS",
    "StepInfo",
    "Ctx",
    "format_path",
    "nearest",
    "validate_document",
    "validate_file",
    "ensure_valid",
    "errors_of",
    "check_template_text",
    "Problem",
    "PipelineValidationError",
]


def _imports(path: Path) -> set[str]:
    """The ``elexirion_app`` modules a file imports (``from a import b`` counts ``a.b`` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("elexirion_app")}


def _check_modules() -> dict[str, set[str]]:
    return {f"{PACKAGE}.{p.stem}": _imports(p) for p in sorted(CHECKS.glob("*.py"))}


def test_no_check_imports_the_orchestrator() -> None:
    offenders = {
        mod: sorted(i for i in imports if i.startswith(ORCHESTRATOR))
        for mod, imports in _check_modules().items()
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_checks_import_graph_has_no_cycle() -> None:
    modules = _check_modules()
    graph = {mod: {i for i in imports if i in modules} for mod, imports in modules.items()}
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError
    assert order[0] in {f"{PACKAGE}.context", f"{PACKAGE}.tables", f"{PACKAGE}.__init__"}
    # the shared context and tables import no other check
    for base in ("context", "tables"):
        assert graph[f"{PACKAGE}.{base}"] <= {f"{PACKAGE}.tables"}, base


def test_every_check_module_imports_the_shared_context_or_tables() -> None:
    for mod, imports in _check_modules().items():
        if mod.rsplit(".", 1)[-1] in {"__init__", "context", "tables"}:
            continue
        assert {f"{PACKAGE}.context", f"{PACKAGE}.tables"} & imports, mod


def test_the_orchestrator_imports_the_checks() -> None:
    imports = _imports(ROOT / "elexirion_app" / "pipelines" / "validate.py")
    concerns = ("structure", "prompts", "references", "llm", "loops", "data", "nested", "types")
    for concern in concerns:
        assert f"{PACKAGE}.{concern}" in imports, concern


def test_every_file_of_validation_stays_small() -> None:
    files = [*CHECKS.glob("*.py"), ROOT / "elexirion_app" / "pipelines" / "validate.py"]
    sizes = {p.name: len(p.read_text("utf-8").splitlines()) for p in files}
    assert {name: n for name, n in sizes.items() if n > 400} == {}


@pytest.mark.parametrize("name", PUBLIC_BEFORE_SPLIT)
def test_every_public_name_of_the_old_module_is_still_importable(name: str) -> None:
    assert hasattr(validate, name), name


def test_inline_pipelines_and_loop_bodies_are_walked_through_the_context() -> None:
    text = """
workflow:
  name: outer
  steps:
    - name: each
      type: for_loop
      iterator: item
      data_source: [1, 2]
      steps:
        - name: inner
          type: claude
          prompt:
            - type: previous_response
              step: nowhere
    - name: child
      type: pipeline
      pipeline:
        name: kid
        steps:
          - name: k
            type: claude
            prompt:
              - type: static
                content: "{{loop.item}}"
"""
    problems = validate.validate_document(load_text(text, "p.yaml"))
    by_path = {p.path: (p.line, p.message) for p in validate.errors_of(problems)}
    assert by_path["steps[0].steps[0].prompt[0].step"] == (
        14,
        "previous_response refers to a step 'nowhere' that does not exist",
    )
    assert by_path["steps[1].pipeline.steps[0].prompt[0].content"][0] == 24
    assert "only defined inside" in by_path["steps[1].pipeline.steps[0].prompt[0].content"][1]


@pytest.mark.parametrize(
    ("step", "path", "message"),
    [
        (
            "{name: a, type: claude, prompt: [{type: [static]}]}",
            "steps[0].prompt[0].type",
            "unknown prompt part type ['static']",
        ),
        (
            "{name: a, type: claude, prompt: [{type: {x: 1}}]}",
            "steps[0].prompt[0].type",
            "unknown prompt part type {'x': 1}",
        ),
        (
            "{name: a, type: data_transform, input_source: [1], operations: [{operation: [map]}]}",
            "steps[0].operations[0].operation",
            "unknown data_transform operation ['map']",
        ),
        (
            "{name: a, type: file_ops, operation: {copy: 1}}",
            "steps[0].operation",
            "unknown file_ops operation {'copy': 1}",
        ),
    ],
)
def test_a_list_or_map_where_a_name_belongs_is_a_problem_not_a_crash(
    step: str, path: str, message: str
) -> None:
    """These raised TypeError (unhashable) before: the editor validates as the user types."""
    problems = validate.validate_document(
        load_text(f"workflow:\n  name: x\n  steps:\n    - {step}\n", "p.yaml")
    )
    assert [(p.path, p.message, p.line) for p in validate.errors_of(problems)] == [
        (path, message, 4)
    ]
