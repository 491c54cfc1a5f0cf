"""The other step types: set_variable, for_loop, while_loop, data_transform (and its
operations), file_ops, pipeline and pipeline_ex's test-only test_echo.

Loops and nested pipelines contain steps and workflows: ``Step`` and ``Workflow`` are defined
in ``spec/workflow.py``, which rebuilds these models once both exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from elexirion_app.pipelines.spec.base import (
    BASICS,
    UNUSED,
    Bool,
    Condition,
    Int,
    Scalar,
    SpecModel,
    StepBase,
    TemplateStr,
    deprecated,
    union_members,
)

if TYPE_CHECKING:
    from elexirion_app.pipelines.spec.workflow import Step, Workflow


class SetVariableStep(StepBase):
    """Sets variables of the run (or of the innermost loop)."""

    type: Literal["set_variable"] = Field(description="The step type: `set_variable`.")
    variables: Annotated[dict[str, Any], Field(min_length=1)] | TemplateStr | None = Field(
        None,
        description="A non-empty map name: value; values render first, and a value that "
        "is exactly one `{{expr}}` keeps its type.",
        json_schema_extra=BASICS,
    )
    scope: Literal["global", "session", "loop"] | TemplateStr | None = Field(
        None, description="global (default) or session: the run's variables; loop: the loop's."
    )
    variable: Scalar | None = Field(
        None,
        description="Single-variable form (with `value`); prefer `variables`.",
        json_schema_extra=deprecated("variables"),
    )
    value: Any = Field(
        None,
        description="The value of the single-variable form.",
        json_schema_extra=deprecated("variables"),
    )


class ForLoopStep(StepBase):
    """Runs its steps once per item of a data source."""

    type: Literal["for_loop"] = Field(description="The step type: `for_loop`.")
    iterator: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description="The name of the current item (`{{loop.<iterator>}}` or bare)."
    )
    data_source: str | list[Any] | dict[str, Any] = Field(
        description="What to iterate: step, step:field.path, previous_response:step[.path], "
        "context:name, a variable or input name, a `{{...}}` list, or a literal list."
    )
    steps: Annotated[list[Step], Field(min_length=1)] = Field(
        description="The steps run for each item (a non-empty list)."
    )
    parallel: Bool | None = Field(None, description="Run the iterations at the same time.")
    max_parallel: Int | None = Field(
        None, description="Iterations run at the same time (default 5, at most 10)."
    )
    break_on_error: Bool | None = Field(
        None, description="Stop at the first failed iteration (default true)."
    )
    break_condition: Condition | None = Field(
        None, description="Checked after each iteration; the loop stops when it holds."
    )
    continue_condition: Condition | None = Field(
        None, description="An iteration is skipped when it holds."
    )
    batch_size: Int | None = Field(
        None, description="Process the items in batches of this size, one after another."
    )


class WhileLoopStep(StepBase):
    """Runs its steps while a condition holds."""

    type: Literal["while_loop"] = Field(description="The step type: `while_loop`.")
    condition: Condition = Field(  # type: ignore[assignment]
        description="The loop condition, checked before each iteration (and before the step)."
    )
    steps: Annotated[list[Step], Field(min_length=1)] = Field(
        description="The steps run in each iteration (a non-empty list)."
    )
    max_iterations: int | None = Field(
        None, ge=1, description="The most iterations (default 100, capped at 1000)."
    )
    timeout_seconds: Int | None = Field(None, description="Stop the loop after this long.")


class FilterOp(SpecModel):
    """Keeps the items for which a condition holds."""

    operation: Literal["filter"] = Field(description="The operation: `filter`.")
    field: str = Field(description="The item field the condition tests.")
    condition: Condition = Field(
        description='"field OP value", "OP value" applied to `field`, or any condition over '
        "the item's fields."
    )


class MapOp(SpecModel):
    """Rewrites a field of every item."""

    operation: Literal["map"] = Field(description="The operation: `map`.")
    field: str = Field(description="The item field to rewrite.")
    mapping: dict[str, Any] | None = Field(None, description="Old value → new value.")
    expression: Literal["uppercase", "lowercase"] | TemplateStr | None = Field(
        None, description="uppercase or lowercase."
    )


class AggregateOp(SpecModel):
    """Reduces the items to one value."""

    operation: Literal["aggregate"] = Field(description="The operation: `aggregate`.")
    field: str = Field(description="The item field aggregated.")
    function: (
        Literal["sum", "average", "count", "max", "min", "first", "last", "unique"] | TemplateStr
    ) = Field(description="sum, average, count, max, min, first, last or unique.")


class JoinOp(SpecModel):
    """Joins the items with the items of another data source."""

    operation: Literal["join"] = Field(description="The operation: `join`.")
    left_field: str = Field(description="The field of these items matched.")
    right_source: str | list[Any] | dict[str, Any] = Field(
        description="The other data source (same forms as a `data_source`)."
    )
    join_key: str = Field(description="The field of the other items matched.")


class GroupByOp(SpecModel):
    """Groups the items by a field (gives a map value → items)."""

    operation: Literal["group_by"] = Field(description="The operation: `group_by`.")
    field: str = Field(description="The item field grouped by.")


class SortOp(SpecModel):
    """Sorts the items by a field."""

    operation: Literal["sort"] = Field(description="The operation: `sort`.")
    field: str = Field(description="The item field sorted by.")
    order: Literal["asc", "desc"] | TemplateStr | None = Field(
        None, description="asc (default) or desc."
    )


Operation = Annotated[
    FilterOp | MapOp | AggregateOp | JoinOp | GroupByOp | SortOp,
    Field(discriminator="operation"),
]


class DataTransformStep(StepBase):
    """Filters, maps, aggregates, joins, groups or sorts data, in order."""

    type: Literal["data_transform"] = Field(description="The step type: `data_transform`.")
    input_source: str | list[Any] | dict[str, Any] = Field(
        description="The data transformed (the same forms as a for_loop `data_source`)."
    )
    operations: list[Operation] | TemplateStr | None = Field(
        None,
        description="The operations, run in order (none: the input passes unchanged).",
        json_schema_extra=BASICS,
    )
    output_field: str | None = Field(
        None, description="The result key holding the data (default `result`)."
    )
    output_format: str | None = Field(
        None, description="Accepted, not used.", json_schema_extra=UNUSED
    )


class FileCheck(SpecModel):
    """One rule of a file_ops `validate`."""

    path: str = Field(description="The file's path, relative to the workspace.")
    must_exist: Bool | None = Field(None, description="The file must exist (default true).")
    must_be_file: Bool | None = Field(None, description="The path must be a file.")
    must_be_dir: Bool | None = Field(None, description="The path must be a folder.")
    min_size: Int | None = Field(None, description="The smallest size in bytes.")
    max_size: Int | None = Field(None, description="The largest size in bytes.")


class FileOpsStep(StepBase):
    """A file operation inside the workspace."""

    type: Literal["file_ops"] = Field(description="The step type: `file_ops`.")
    operation: Literal["copy", "move", "delete", "validate", "list", "convert"] = Field(
        description="copy/move (source, destination), delete (path), validate (files), "
        "list (path, pattern), convert (source, destination, format).",
        json_schema_extra={
            "x-requires": {
                "copy": ["source", "destination"],
                "move": ["source", "destination"],
                "delete": ["path"],
                "validate": ["files"],
                "list": ["path"],
                "convert": ["source", "destination", "format"],
            }
        },
    )
    source: str | None = Field(
        None, description="The source path, relative to the workspace.", json_schema_extra=BASICS
    )
    destination: str | None = Field(
        None,
        description="The destination path, relative to the workspace.",
        json_schema_extra=BASICS,
    )
    path: str | None = Field(
        None, description="The path deleted or listed.", json_schema_extra=BASICS
    )
    pattern: str | None = Field(None, description="The glob that `list` matches (default `*`).")
    min_count: Int | None = Field(
        None,
        description="`list` fails when fewer files match (1: nothing to work on is an error, "
        "not an empty success).",
    )
    files: list[FileCheck | str] | TemplateStr | None = Field(
        None, description="The rules of `validate`: [{path, must_exist, ...}]."
    )
    format: Literal["csv_to_json", "json_to_csv", "yaml_to_json"] | TemplateStr | None = Field(
        None, description="The conversion of `convert`: csv_to_json, json_to_csv, yaml_to_json."
    )


class OutputMap(SpecModel):
    """A value of the nested pipeline returned under a new name."""

    path: str = Field(description='A path into the child\'s results, such as "step.a.b".')
    as_: str = Field(alias="as", description="The name the value is returned as.")


class NestedConfig(SpecModel):
    """How a nested pipeline runs."""

    inherit_context: Bool | None = Field(
        None,
        description="The child also sees the parent's inputs, global_vars, step results "
        "and variables.",
    )
    max_depth: Int | None = Field(None, description="The deepest nesting (default 10).")
    max_total_steps: Int | None = Field(None, description="The most steps run in total.")
    timeout_seconds: Int | None = Field(None, description="Stop the child after this long.")


class WrappedWorkflow(SpecModel):
    """An inline pipeline written with its own `workflow:` key."""

    workflow: Workflow = Field(description="The inline pipeline.")


class PipelineStep(StepBase):
    """Runs another pipeline (a file or an inline one) as one step."""

    type: Literal["pipeline"] = Field(description="The step type: `pipeline`.")
    pipeline_file: str | None = Field(
        None,
        description="The pipeline file, relative to this file's folder, then the workspace "
        "(give this or `pipeline`).",
        json_schema_extra=BASICS,
    )
    pipeline: Workflow | WrappedWorkflow | None = Field(
        None,
        description="An inline pipeline with name and steps (give this or pipeline_file).",
        json_schema_extra=BASICS,
    )
    inputs: dict[str, Any] | None = Field(
        None, description="The child's inputs, rendered in the parent."
    )
    outputs: list[str | OutputMap] | TemplateStr | None = Field(
        None,
        description="Step names, or {path, as} items, returned to the parent "
        "(default: every step's result).",
    )
    config: NestedConfig | None = Field(
        None, description="inherit_context, max_depth, max_total_steps, timeout_seconds."
    )


class TestEchoStep(StepBase):
    """pipeline_ex's test-only step: returns its `value` (validation warns)."""

    __test__ = False  # not a pytest test class
    model_config = ConfigDict(json_schema_extra={"x-test-only": True})

    type: Literal["test_echo"] = Field(description="The step type: `test_echo` (tests only).")
    value: Any = Field(None, description="The value returned as `result`.")


OPERATION_MODELS: tuple[type[SpecModel], ...] = union_members(Operation)
