"""The step union and the workflow: defaults, functions, inputs, ``Workflow``, ``PipelineFile``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from elexirion_app.pipelines.spec.base import (
    IGNORED,
    UNUSED,
    Bool,
    OutputFormat,
    Preset,
    Scalar,
    SpecModel,
    StepBase,
    TemplateStr,
    union_members,
)
from elexirion_app.pipelines.spec.flow_steps import (
    DataTransformStep,
    FileOpsStep,
    ForLoopStep,
    PipelineStep,
    SetVariableStep,
    TestEchoStep,
    WhileLoopStep,
    WrappedWorkflow,
)
from elexirion_app.pipelines.spec.llm_steps import (
    ClaudeBatchStep,
    ClaudeExtractStep,
    ClaudeRobustStep,
    ClaudeSessionStep,
    ClaudeSmartStep,
    ClaudeStep,
    GeminiInstructorStep,
    GeminiStep,
    ParallelClaudeStep,
)
from elexirion_app.pipelines.spec.options import ClaudeOptions, TokenBudget

Step = Annotated[
    SetVariableStep
    | ClaudeStep
    | GeminiStep
    | ParallelClaudeStep
    | GeminiInstructorStep
    | ClaudeSmartStep
    | ClaudeSessionStep
    | ClaudeExtractStep
    | ClaudeBatchStep
    | ClaudeRobustStep
    | ForLoopStep
    | WhileLoopStep
    | DataTransformStep
    | FileOpsStep
    | PipelineStep
    | TestEchoStep,
    Field(discriminator="type"),
]


STEP_MODELS: tuple[type[StepBase], ...] = union_members(Step)
"""Every step model, in the order of the step union (the order step types are listed in)."""


# --- the workflow -----------------------------------------------------------------------


class Defaults(SpecModel):
    """Values applied to every step that does not set its own."""

    claude_options: ClaudeOptions | None = Field(
        None, description="Deep-merged under every Claude step's and parallel task's options."
    )
    claude_model: str | None = Field(
        None, description="Becomes `claude_options.model` when a step does not set it."
    )
    model: str | None = Field(
        None, description="Checked to be a Claude model; not applied.", json_schema_extra=UNUSED
    )
    claude_output_format: OutputFormat | TemplateStr | None = Field(
        None, description="Becomes `claude_options.output_format` when a step does not set it."
    )
    claude_preset: Preset | TemplateStr | None = Field(
        None, description="The preset of every enhanced Claude step that does not set one."
    )
    gemini_model: str | None = Field(
        None, description="The model of Gemini steps that do not set one."
    )
    gemini_token_budget: TokenBudget | None = Field(
        None, description="Merged under each Gemini step's `token_budget`."
    )
    output_dir: str | None = Field(
        None, description="Where `output_to_file` writes (default `outputs`)."
    )


class GeminiFunction(SpecModel):
    """A function Gemini steps may call."""

    description: str = Field(description="What the function does (shown to the model).")
    parameters: dict[str, Any] = Field(description="The function's parameters, a JSON schema.")


class InputSpec(SpecModel):
    """A run input (our addition)."""

    name: Scalar = Field(description="The input's name, read as `{{inputs.name}}`.")
    description: str | None = Field(None, description="What the input is for.")
    required: Bool | None = Field(
        None, description="The run needs it (an input without `default` is required)."
    )
    default: Any = Field(None, description="The value used when the run does not give one.")


class InputDetails(SpecModel):
    """A run input in the map form `name: {description, required, default}`."""

    description: str | None = Field(None, description="What the input is for.")
    required: Bool | None = Field(None, description="The run needs it.")
    default: Any = Field(None, description="The value used when the run does not give one.")


class Workflow(SpecModel):
    """A pipeline: its name, settings and steps (the content of `workflow:`)."""

    name: Annotated[str, StringConstraints(pattern=r"\S")] | int | float = Field(
        description="The pipeline's name (also names its checkpoint files)."
    )
    description: Any = Field(None, description="Free text; `{{workflow.description}}`.")
    version: Any = Field(None, description="Free text; `{{workflow.version}}`.")
    metadata: Any = Field(None, description="Free data about the pipeline.")
    inputs: list[InputSpec | Scalar] | dict[str, InputDetails | Any] | None = Field(
        None,
        description="The run inputs: a list of {name, description, required, default} "
        "(or names), or a map name: {...}.",
    )
    defaults: Defaults | None = Field(
        None, description="Values applied to every step that does not set its own."
    )
    global_vars: dict[str, Any] | None = Field(
        None, description="Constants read as `{{global_vars.x}}` or bare `{{x}}`."
    )
    variables: dict[str, Any] | None = Field(
        None, description="Seeds the run's variable state (`{{state.x}}`)."
    )
    gemini_functions: dict[str, GeminiFunction] | None = Field(
        None, description="name: {description, parameters}, used by Gemini `functions:`."
    )
    environment: Any = Field(None, description="Read by claude_smart for its metadata.")
    workspace_dir: str | None = Field(
        None,
        description="The folder file steps and tools work in, relative to the pipeline file "
        "(default ./workspace).",
    )
    checkpoint_enabled: Bool | None = Field(
        None, description="Write a checkpoint after each top-level step (default off)."
    )
    checkpoint_dir: str | None = Field(
        None, description="The checkpoint folder (default ./checkpoints)."
    )
    steps: Annotated[list[Step], Field(min_length=1)] = Field(
        description="The steps, run in order (a non-empty list)."
    )
    claude_auth: Any = Field(
        None, description="Ignored by pipeline_ex and by us.", json_schema_extra=IGNORED
    )
    input: Any = Field(
        None, description="Ignored by pipeline_ex and by us.", json_schema_extra=IGNORED
    )
    hooks: Any = Field(
        None,
        description="Tool hooks; not executed, so a non-empty `hooks:` is refused by validation.",
        json_schema_extra=IGNORED,
    )
    mcp_servers: Any = Field(
        None, description="Ignored by pipeline_ex and by us.", json_schema_extra=IGNORED
    )
    agents: Any = Field(
        None, description="Ignored by pipeline_ex and by us.", json_schema_extra=IGNORED
    )
    enable_skills: Any = Field(
        None, description="Ignored by pipeline_ex and by us.", json_schema_extra=IGNORED
    )
    setting_sources: Any = Field(
        None, description="Ignored by pipeline_ex and by us.", json_schema_extra=IGNORED
    )
    memory_config: Any = Field(
        None, description="Ignored by pipeline_ex and by us.", json_schema_extra=IGNORED
    )


class PipelineFile(SpecModel):
    """A pipeline file: everything sits under the one top-level key `workflow:`."""

    workflow: Workflow = Field(description="The pipeline.")


for _model in (ForLoopStep, WhileLoopStep, WrappedWorkflow, PipelineStep, Workflow, PipelineFile):
    _model.model_rebuild()
