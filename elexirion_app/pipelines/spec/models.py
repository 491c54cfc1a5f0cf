"""Typed models of the pipeline_ex YAML format, one per step type and prompt part.

This module gathers them; they live by concern in ``spec/base.py`` (value types, metadata,
``SpecModel``, ``StepBase``), ``options.py`` (retries, Claude options, token budgets),
``parts.py`` (prompt parts), ``llm_steps.py``, ``flow_steps.py`` (loops, data, files, nested
pipelines) and ``workflow.py`` (the step union, defaults, inputs, ``Workflow``).

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

from elexirion_app.pipelines.spec.base import (
    BASICS,
    IGNORED,
    IGNORED_STEP_KEYS,
    TEXTAREA,
    UNUSED,
    Backoff,
    Bool,
    Condition,
    FallbackAction,
    Int,
    Number,
    OutputFormat,
    PostProcessing,
    Preset,
    Scalar,
    SpecModel,
    StepBase,
    TemplateStr,
    deprecated,
)
from elexirion_app.pipelines.spec.flow_steps import (
    OPERATION_MODELS,
    AggregateOp,
    DataTransformStep,
    FileCheck,
    FileOpsStep,
    FilterOp,
    ForLoopStep,
    GroupByOp,
    JoinOp,
    MapOp,
    NestedConfig,
    Operation,
    OutputMap,
    PipelineStep,
    SetVariableStep,
    SortOp,
    TestEchoStep,
    WhileLoopStep,
    WrappedWorkflow,
)
from elexirion_app.pipelines.spec.llm_steps import (
    BatchConfig,
    BatchTask,
    ClaudeBatchStep,
    ClaudeExtractStep,
    ClaudeRobustStep,
    ClaudeSessionStep,
    ClaudeSmartStep,
    ClaudeStep,
    EnhancedClaudeStep,
    ExtractionConfig,
    GeminiInstructorStep,
    GeminiStep,
    ParallelClaudeStep,
    ParallelTask,
    SessionConfig,
)
from elexirion_app.pipelines.spec.options import (
    ClaudeOptions,
    RetryConfig,
    TokenBudget,
)
from elexirion_app.pipelines.spec.parts import (
    PROMPT_PART_MODELS,
    ClaudeContinuePart,
    FilePart,
    PreviousResponsePart,
    Prompt,
    PromptPart,
    SessionContextPart,
    StaticPart,
)
from elexirion_app.pipelines.spec.workflow import (
    STEP_MODELS,
    Defaults,
    GeminiFunction,
    InputDetails,
    InputSpec,
    PipelineFile,
    Step,
    Workflow,
)

__all__ = [
    "BASICS",
    "IGNORED",
    "IGNORED_STEP_KEYS",
    "OPERATION_MODELS",
    "PROMPT_PART_MODELS",
    "STEP_MODELS",
    "TEXTAREA",
    "UNUSED",
    "AggregateOp",
    "Backoff",
    "BatchConfig",
    "BatchTask",
    "Bool",
    "ClaudeBatchStep",
    "ClaudeContinuePart",
    "ClaudeExtractStep",
    "ClaudeOptions",
    "ClaudeRobustStep",
    "ClaudeSessionStep",
    "ClaudeSmartStep",
    "ClaudeStep",
    "Condition",
    "DataTransformStep",
    "Defaults",
    "EnhancedClaudeStep",
    "ExtractionConfig",
    "FallbackAction",
    "FileCheck",
    "FileOpsStep",
    "FilePart",
    "FilterOp",
    "ForLoopStep",
    "GeminiFunction",
    "GeminiInstructorStep",
    "GeminiStep",
    "GroupByOp",
    "InputDetails",
    "InputSpec",
    "Int",
    "JoinOp",
    "MapOp",
    "NestedConfig",
    "Number",
    "Operation",
    "OutputFormat",
    "OutputMap",
    "ParallelClaudeStep",
    "ParallelTask",
    "PipelineFile",
    "PipelineStep",
    "PostProcessing",
    "Preset",
    "PreviousResponsePart",
    "Prompt",
    "PromptPart",
    "RetryConfig",
    "Scalar",
    "SessionConfig",
    "SessionContextPart",
    "SetVariableStep",
    "SortOp",
    "SpecModel",
    "StaticPart",
    "Step",
    "StepBase",
    "TemplateStr",
    "TestEchoStep",
    "TokenBudget",
    "WhileLoopStep",
    "Workflow",
    "WrappedWorkflow",
    "deprecated",
]
