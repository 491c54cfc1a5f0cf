"""The LLM step types: claude, gemini, gemini_instructor, parallel_claude and the enhanced
Claude steps (smart, session, extract, batch, robust) with their option maps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from elexirion_app.pipelines.spec.base import (
    BASICS,
    UNUSED,
    Bool,
    Int,
    PostProcessing,
    Preset,
    Scalar,
    SpecModel,
    StepBase,
    TemplateStr,
)
from elexirion_app.pipelines.spec.options import ClaudeOptions, RetryConfig, TokenBudget
from elexirion_app.pipelines.spec.parts import Prompt


class ClaudeStep(StepBase):
    """A Claude call with our workspace-bound tool loop."""

    type: Literal["claude"] = Field(description="The step type: `claude`.")
    prompt: Prompt = Field(description="The prompt: a list of prompt parts.")
    claude_options: ClaudeOptions | None = Field(
        None, description="Options of the call, deep-merged over `defaults.claude_options`."
    )
    model: str | None = Field(
        None,
        description="Checked but not used: the model comes from `claude_options.model` "
        "or the defaults.",
        json_schema_extra=UNUSED,
    )


class GeminiStep(StepBase):
    """A Gemini call, optionally with function calling."""

    type: Literal["gemini"] = Field(description="The step type: `gemini`.")
    prompt: Prompt = Field(description="The prompt: a list of prompt parts.")
    model: str | None = Field(
        None, description="The Gemini model (default `defaults.gemini_model`)."
    )
    token_budget: TokenBudget | None = Field(
        None, description="Generation limits, merged over `defaults.gemini_token_budget`."
    )
    functions: list[str] | None = Field(
        None, description="Names of `gemini_functions` the model may call."
    )
    timeout_ms: Int | None = Field(None, description="Per-call timeout in milliseconds.")


class GeminiInstructorStep(GeminiStep):
    """A Gemini call whose answer is requested as JSON matching a schema."""

    type: Literal["gemini_instructor"] = Field(  # type: ignore[assignment]
        description="The step type: `gemini_instructor`."
    )
    schema_: dict[str, Any] | None = Field(
        None,
        alias="schema",
        description="The JSON schema of the answer (used when `response_schema` is absent).",
    )
    response_schema: dict[str, Any] | None = Field(
        None, description="The JSON schema of the answer (takes precedence over `schema`)."
    )
    output_schema: dict[str, Any] | None = Field(
        None,
        description="The JSON schema of the answer (used after `response_schema`, "
        "before `schema`).",
    )


class ParallelTask(SpecModel):
    """One task of a `parallel_claude` step."""

    id: Scalar = Field(description="The task's id, unique within the step.")
    prompt: Prompt = Field(description="The task's prompt: a list of prompt parts.")
    claude_options: ClaudeOptions | None = Field(
        None, description="Options of the task's Claude call."
    )
    output_to_file: str | None = Field(
        None, description="A file name inside the output directory for this task's answer."
    )


class ParallelClaudeStep(StepBase):
    """Several Claude tasks run at the same time."""

    type: Literal["parallel_claude"] = Field(description="The step type: `parallel_claude`.")
    parallel_tasks: Annotated[list[ParallelTask], Field(min_length=1)] | TemplateStr = Field(
        description="A non-empty list of tasks {id, prompt, claude_options, output_to_file}."
    )
    max_parallel: Int | None = Field(
        None, description="Accepted, not used yet.", json_schema_extra=UNUSED
    )


class EnhancedClaudeStep(StepBase):
    """Fields shared by the enhanced Claude steps."""

    prompt: Prompt | None = Field(None, description="The prompt: a list of prompt parts.")
    claude_options: ClaudeOptions | None = Field(
        None, description="Options of the call, deep-merged over the preset's."
    )
    model: str | None = Field(
        None,
        description="Checked but not used: the model comes from `claude_options.model`.",
        json_schema_extra=UNUSED,
    )
    preset: Preset | TemplateStr | None = Field(
        None,
        description="An option set: development, production, analysis or chat "
        "(default `defaults.claude_preset`, then the type's own).",
    )
    permission_mode: str | None = Field(
        None, description="Accepted for compatibility.", json_schema_extra=UNUSED
    )
    session_id: str | None = Field(
        None, description="Accepted for compatibility.", json_schema_extra=UNUSED
    )
    timeout_ms: Int | None = Field(None, description="Per-call timeout in milliseconds.")
    retry_config: RetryConfig | None = Field(
        None, description="Retries and the fallback when they run out."
    )
    debug_mode: Bool | None = Field(
        None, description="Accepted for compatibility.", json_schema_extra=UNUSED
    )
    cost_tracking: Bool | None = Field(
        None, description="Accepted for compatibility.", json_schema_extra=UNUSED
    )


class ClaudeSmartStep(EnhancedClaudeStep):
    """A Claude call whose tools follow its preset."""

    type: Literal["claude_smart"] = Field(description="The step type: `claude_smart`.")
    prompt: Prompt = Field(description="The prompt: a list of prompt parts.")
    environment_aware: Bool | None = Field(
        None, description="Add the workflow's `environment` to the step's metadata."
    )


class SessionConfig(SpecModel):
    """The conversation a `claude_session` step belongs to."""

    session_name: str | None = Field(
        None, description="Steps sharing this name within a run form one conversation."
    )
    persist: Bool | None = Field(None, description="Keep the conversation.")
    checkpoint_frequency: Int | None = Field(
        None, description="Accepted, not used.", json_schema_extra=UNUSED
    )
    continue_on_restart: Bool | None = Field(
        None, description="Accepted, not used.", json_schema_extra=UNUSED
    )
    description: str | None = Field(None, description="Free text about the session.")


class ClaudeSessionStep(EnhancedClaudeStep):
    """A Claude call continuing a conversation shared by steps of the same session."""

    type: Literal["claude_session"] = Field(description="The step type: `claude_session`.")
    prompt: Prompt = Field(description="The prompt: a list of prompt parts.")
    session_config: SessionConfig | None = Field(
        None, description="The session: session_name, persist, checkpoint_frequency, ..."
    )


class ExtractionConfig(SpecModel):
    """How a `claude_extract` answer is post-processed (plain text handling)."""

    format: Literal["text", "json", "structured", "summary", "markdown"] | TemplateStr | None = (
        Field(None, description="text, json, structured, summary or markdown.")
    )
    post_processing: list[PostProcessing | str] | None = Field(
        None,
        description="Processing steps: extract_code_blocks, extract_recommendations, "
        "extract_links, extract_key_points, format_markdown, generate_summary.",
    )
    max_summary_length: Int | None = Field(None, description="The longest summary, in characters.")
    include_metadata: Bool | None = Field(
        None, description="Add `extraction_metadata` to the result."
    )


class ClaudeExtractStep(EnhancedClaudeStep):
    """A Claude call whose answer is post-processed into a format."""

    type: Literal["claude_extract"] = Field(description="The step type: `claude_extract`.")
    prompt: Prompt = Field(description="The prompt: a list of prompt parts.")
    extraction_config: ExtractionConfig | None = Field(
        None, description="The format and post-processing of the answer."
    )


class BatchTask(SpecModel):
    """One task of a `claude_batch` step: a prompt or a file."""

    task_id: Scalar | None = Field(None, description="The task's id in the batch report.")
    prompt: Prompt | None = Field(None, description="The task's prompt (or give `file`).")
    file: str | None = Field(None, description="A workspace file used as the task's prompt.")


class BatchConfig(SpecModel):
    """How the tasks of a `claude_batch` step run."""

    max_parallel: Int | None = Field(
        None, description="Tasks run at the same time (default 3, at most 10)."
    )
    timeout_per_task: Int | None = Field(
        None, description="Timeout of each task in milliseconds (default 60000)."
    )
    consolidate_results: Bool | None = Field(
        None, description="Join the tasks' answers into one report."
    )


class ClaudeBatchStep(EnhancedClaudeStep):
    """Several Claude tasks run as a batch, with a report of their results."""

    type: Literal["claude_batch"] = Field(description="The step type: `claude_batch`.")
    tasks: list[BatchTask] | TemplateStr | None = Field(
        None,
        description="The tasks [{task_id?, prompt | file}]; a step-level prompt is put in "
        "front of each.",
        json_schema_extra=BASICS,
    )
    batch_config: BatchConfig | None = Field(
        None, description="max_parallel, timeout_per_task, consolidate_results."
    )


class ClaudeRobustStep(EnhancedClaudeStep):
    """A Claude call with retries, backoff and a fallback action."""

    type: Literal["claude_robust"] = Field(description="The step type: `claude_robust`.")
    prompt: Prompt = Field(description="The prompt: a list of prompt parts.")
