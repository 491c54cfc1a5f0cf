"""Typed models of the pipeline_ex YAML format, one per step type and prompt part.

CONTRACT:
- The models describe the *structure* of a file (which keys, which kinds of values); the checks
  that need the whole pipeline (references, loops, conditions, nested files, models, paths)
  stay in ``pipelines/checks/`` (run by ``pipelines/validate.py``).
- Unknown keys are allowed everywhere (``extra="allow"``): validation reports them as warnings,
  so a real file is never refused for them.
- Where pipeline_ex files write a ``{{ ... }}`` template in place of a number, a boolean, an
  enum value or a list, the template is accepted too (``Templated[...]``).
- Every model has a docstring and every field a ``description``: they are the text of the JSON
  Schema (editor hover, inspector forms) and of the reference in ``docs/pipeline-format.md``.
- The models are the single source of the key tables and enum values ``pipelines/checks``
  validates with (``checks/tables.py`` derives them). What validation needs beyond the types
  is metadata here, also visible in the JSON Schema: ``x-ignored`` (a key accepted and ignored,
  with a warning), ``deprecated`` with ``x-instead`` (an older spelling), ``x-test-only`` (a
  step type of pipeline_ex's test suite), ``x-requires`` (the fields each ``file_ops``
  operation needs); an *open* enum (``Literal[...] | str``) lists the known values of a field
  whose other values are warned about, not refused. ``IGNORED_STEP_KEYS`` is the one table of
  keys accepted on every step that are not fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# --- value types ------------------------------------------------------------------------

TemplateStr = Annotated[str, StringConstraints(pattern=r"\{\{")]
"""A string holding a ``{{ ... }}`` template (its value is known only at run time)."""

Int: TypeAlias = int | TemplateStr
Number: TypeAlias = int | float | TemplateStr
Bool: TypeAlias = bool | TemplateStr
Scalar: TypeAlias = str | int | float
Condition: TypeAlias = str | bool | int | float | list[Any] | dict[str, Any]
Preset = Literal["development", "production", "analysis", "chat"]
OutputFormat = Literal["text", "json", "stream_json"]
Backoff = Literal["linear", "exponential", "fixed"]
FallbackAction = Literal[
    "graceful_degradation", "use_cached_response", "simplified_prompt", "emergency_response"
]
PostProcessing = Literal[
    "extract_code_blocks",
    "extract_recommendations",
    "extract_links",
    "extract_key_points",
    "format_markdown",
    "generate_summary",
]

# Field metadata (``json_schema_extra``), read by ``checks/tables.py`` and the forms.
IGNORED: dict[str, Any] = {"x-ignored": True}
"""A key accepted and ignored by pipeline_ex and by us (validation warns)."""


UNUSED: dict[str, Any] = {"x-unused": True}
"""A key accepted (for pipeline_ex's files) that changes nothing: forms put it under Advanced."""
TEXTAREA: dict[str, Any] = {"x-form": "textarea"}
"""A long text: forms give it a multi-line box."""
BASICS: dict[str, Any] = {"x-group": "Basics"}
"""An optional key that is still one of the first things to fill in (forms' Basics group)."""


def deprecated(instead: str) -> dict[str, Any]:
    """An older spelling still accepted; ``instead`` names what to write now."""
    return {"deprecated": True, "x-instead": instead}


class SpecModel(BaseModel):
    """Base of every model: unknown keys are kept (validation warns about them)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- options ----------------------------------------------------------------------------


class RetryConfig(SpecModel):
    """How a failed model call is retried, and what happens when the retries run out."""

    max_retries: Int | None = Field(
        None, description="How many times a failed call is retried (default 3, at most 10)."
    )
    backoff_strategy: Backoff | TemplateStr | None = Field(
        None, description="The wait between retries: linear, exponential (default) or fixed."
    )
    base_delay_ms: Int | None = Field(
        None, description="The first wait between retries, in milliseconds (default 1000)."
    )
    retry_conditions: list[str] | TemplateStr | None = Field(
        None,
        description="Substrings of the error that make a retry worthwhile "
        "(plus `timeout` and `api_error`).",
    )
    retry_on: list[str] | TemplateStr | None = Field(
        None,
        description="Another name for `retry_conditions`.",
        json_schema_extra=deprecated("retry_conditions"),
    )
    fallback_action: FallbackAction | str | None = Field(
        None,
        description="What happens when the retries run out: graceful_degradation, "
        "use_cached_response, simplified_prompt or emergency_response; without one, "
        "the step fails.",
    )


class ClaudeOptions(SpecModel):
    """Options of a Claude call (also the shape of `defaults.claude_options`)."""

    model: str | None = Field(
        None, description="The Claude model to call: haiku, sonnet, opus or a full model id."
    )
    fallback_model: str | None = Field(
        None, description="A model tried once when the provider fails."
    )
    max_turns: int | None = Field(
        None, ge=1, description="Rounds of the tool loop (a positive whole number; default 3)."
    )
    allowed_tools: list[str] | None = Field(
        None, description="The tools the model may use (Read, Glob, Grep, LS, Write, Edit)."
    )
    disallowed_tools: list[str] | None = Field(None, description="Tools the model may not use.")
    system_prompt: str | None = Field(
        None, description="The system prompt.", json_schema_extra=TEXTAREA
    )
    append_system_prompt: str | None = Field(
        None, description="Text appended to the system prompt.", json_schema_extra=TEXTAREA
    )
    cwd: str | None = Field(
        None, description="A folder inside the workspace that the tools start from."
    )
    max_tokens: Int | None = Field(
        None, description="The most tokens the answer may have (default 4096)."
    )
    temperature: Number | None = Field(None, description="Sampling temperature.")
    max_thinking_tokens: Int | None = Field(
        None, description="Extended thinking budget (at least 1024 tokens; 0 turns it off)."
    )
    thinking: bool | int | dict[str, Any] | TemplateStr | None = Field(
        None,
        description="Extended thinking: true, a token budget, or "
        "{type: enabled, budget_tokens: N}; 0 or false turns it off.",
    )
    timeout_ms: Int | None = Field(None, description="Per-call timeout in milliseconds.")
    timeout_seconds: Int | None = Field(None, description="Per-call timeout in seconds.")
    retry_config: RetryConfig | None = Field(
        None, description="Provider retries (`max_retries`, `backoff_strategy`)."
    )
    output_format: OutputFormat | TemplateStr | None = Field(
        None,
        description="Accepted for compatibility: text, json or stream_json.",
        json_schema_extra=UNUSED,
    )
    verbose: Bool | None = Field(
        None, description="Accepted for compatibility; not used.", json_schema_extra=UNUSED
    )
    permission_mode: str | None = Field(
        None, description="Accepted for compatibility; not used.", json_schema_extra=UNUSED
    )
    session_id: str | None = Field(
        None, description="Accepted for compatibility; not used.", json_schema_extra=UNUSED
    )
    debug_mode: Bool | None = Field(
        None, description="Accepted for compatibility; not used.", json_schema_extra=UNUSED
    )
    cost_tracking: Bool | None = Field(
        None,
        description="Accepted for compatibility; cost is always tracked.",
        json_schema_extra=UNUSED,
    )
    print: Bool | None = Field(
        None, description="Accepted for compatibility; not used.", json_schema_extra=UNUSED
    )
    telemetry_enabled: Bool | None = Field(
        None, description="Accepted for compatibility; not used.", json_schema_extra=UNUSED
    )


class TokenBudget(SpecModel):
    """Generation limits of a Gemini call."""

    temperature: Number | None = Field(None, description="Sampling temperature.")
    max_output_tokens: Int | None = Field(None, description="The most tokens the answer may have.")
    top_p: Number | None = Field(None, description="Nucleus sampling probability.")
    top_k: Int | None = Field(None, description="Top-k sampling.")


# --- prompt parts -----------------------------------------------------------------------


class StaticPart(SpecModel):
    """A fixed text (templates rendered)."""

    type: Literal["static"] = Field(description="The part type: `static`.")
    content: Scalar = Field(
        description="The text of the part; `{{ ... }}` templates render.",
        json_schema_extra=TEXTAREA,
    )


class FilePart(SpecModel):
    """The content of a file of the workspace (at most 2 MB)."""

    type: Literal["file"] = Field(description="The part type: `file`.")
    path: str = Field(description="The file's path, relative to the workspace.")


class PreviousResponsePart(SpecModel):
    """The result of an earlier step."""

    type: Literal["previous_response"] = Field(description="The part type: `previous_response`.")
    step: Scalar = Field(description="The name of an earlier step.")
    extract: str | None = Field(
        None,
        description="A path such as `a.b` looked up in the result (also inside an answer "
        "whose text is JSON); without it an LLM result gives its text.",
    )
    strict: Bool | None = Field(
        None, description="Fail the step when the `extract` path is missing (instead of nil)."
    )
    extract_with: Any = Field(None, description="Accepted, not used.", json_schema_extra=UNUSED)


class SessionContextPart(SpecModel):
    """The stored conversation of a session (empty outside the app)."""

    type: Literal["session_context"] = Field(description="The part type: `session_context`.")
    session_id: str | None = Field(None, description="The session whose conversation is read.")
    include_last_n: Int | None = Field(
        None, description="Accepted, not used.", json_schema_extra=UNUSED
    )


class ClaudeContinuePart(SpecModel):
    """The stored conversation of a session, followed by a new prompt."""

    type: Literal["claude_continue"] = Field(description="The part type: `claude_continue`.")
    session_id: str | None = Field(None, description="The session to continue.")
    new_prompt: str | None = Field(
        None, description="The text added after the conversation.", json_schema_extra=TEXTAREA
    )


PromptPart = Annotated[
    StaticPart | FilePart | PreviousResponsePart | SessionContextPart | ClaudeContinuePart,
    Field(discriminator="type"),
]
# A plain string (as a prompt or a part) is used as static content, with a warning.
Prompt: TypeAlias = Annotated[list[PromptPart | str], Field(min_length=1)] | str


# --- steps ------------------------------------------------------------------------------


IGNORED_STEP_KEYS = frozenset({"output_schema", "options"})
"""Keys any step may carry that pipeline_ex and we ignore (validation warns); not fields, so
the JSON Schema and the forms leave them out (``gemini_instructor`` reads ``output_schema``:
there it is a field)."""


class StepBase(SpecModel):
    """Fields every step may have."""

    name: Scalar = Field(description="The step's name, unique within its list of steps.")
    condition: Condition | None = Field(
        None,
        description="The step runs only when this condition holds: a string expression, "
        "{and: [...]}, {or: [...]}, {not: c} or a list (all must hold).",
    )
    output_to_file: str | None = Field(
        None,
        description="A file name inside the output directory; text is written as it is, "
        "other results as indented JSON.",
    )
    role: Any = Field(None, description="Accepted, not used.", json_schema_extra=UNUSED)
    description: Any = Field(
        None, description="Free text about the step; not used.", json_schema_extra=UNUSED
    )


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


def _members(union: Any) -> tuple[Any, ...]:
    """The models of an ``Annotated[A | B | ..., Field(discriminator=...)]`` union, in order."""
    return get_args(get_args(union)[0])


STEP_MODELS: tuple[type[StepBase], ...] = _members(Step)
"""Every step model, in the order of the step union (the order step types are listed in)."""
PROMPT_PART_MODELS: tuple[type[SpecModel], ...] = _members(PromptPart)
OPERATION_MODELS: tuple[type[SpecModel], ...] = _members(Operation)


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
