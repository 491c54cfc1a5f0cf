"""The tables validation knows, derived from the typed spec (``pipelines/spec/models.py``).

Step types and their families, the known keys of every section, the enum values and the
fields each operation needs are read from the pydantic models (field names and aliases,
``Literal`` values, the spec's ``x-*`` metadata) — nothing here is typed a second time. Only
what is about results or limits rather than the YAML's structure is written here
(``SET_VARIABLE_RESULT``, ``LOOP_CONTEXT_KEYS``, the caps).

Every check module reads these names from here; ``pipelines/validate.py`` re-exports them.
"""

from __future__ import annotations

from elexirion_app.pipelines.spec import introspect as si
from elexirion_app.pipelines.spec.models import (
    IGNORED_STEP_KEYS,
    OPERATION_MODELS,
    PROMPT_PART_MODELS,
    STEP_MODELS,
    AggregateOp,
    ClaudeOptions,
    ClaudeStep,
    Defaults,
    EnhancedClaudeStep,
    ExtractionConfig,
    FileOpsStep,
    ForLoopStep,
    GeminiStep,
    MapOp,
    ParallelClaudeStep,
    RetryConfig,
    SetVariableStep,
    SortOp,
    StepBase,
    WhileLoopStep,
    Workflow,
)

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "BACKOFF",
    "CLAUDE_OPTION_KEYS",
    "CLAUDE_TYPES",
    "COMMON_STEP_KEYS",
    "CONVERT_FORMATS",
    "DEFAULTS_KEYS",
    "ENHANCED_KEYS",
    "ENHANCED_TYPES",
    "EXTRACTION_FORMATS",
    "FALLBACK_ACTIONS",
    "FILE_OPS",
    "GEMINI_TYPES",
    "IGNORED_STEP_KEYS",
    "LLM_TYPES",
    "LOOP_CONTEXT_KEYS",
    "LOOP_TYPES",
    "MAP_EXPRESSIONS",
    "MAX_NESTED_DEPTH",
    "MAX_WHILE_ITERATIONS",
    "NO_PROMPT_TYPES",
    "OUTPUT_FORMATS",
    "POST_PROCESSING",
    "PRESETS",
    "PROMPT_PART_FIELDS",
    "SET_SCOPES",
    "SET_VARIABLE_RESULT",
    "SORT_ORDERS",
    "STEP_KEYS",
    "STEP_MODEL_BY_TYPE",
    "STEP_TYPES",
    "TEST_STEP_TYPES",
    "TOP_IGNORED",
    "TOP_KEYS",
    "TRANSFORM_OPS",
]

# --- step types and families ------------------------------------------------------------

STEP_MODEL_BY_TYPE = {si.tag(model): model for model in STEP_MODELS}
# pipeline_ex's test-suite step (echoes ``value``); its test fixtures use it.
TEST_STEP_TYPES = tuple(t for t, m in STEP_MODEL_BY_TYPE.items() if si.is_test_only(m))
STEP_TYPES = tuple(t for t in STEP_MODEL_BY_TYPE if t not in TEST_STEP_TYPES)
ENHANCED_TYPES = frozenset(
    t for t, m in STEP_MODEL_BY_TYPE.items() if issubclass(m, EnhancedClaudeStep)
)
CLAUDE_TYPES = frozenset({si.tag(ClaudeStep)}) | ENHANCED_TYPES
GEMINI_TYPES = frozenset(t for t, m in STEP_MODEL_BY_TYPE.items() if issubclass(m, GeminiStep))
LLM_TYPES = CLAUDE_TYPES | GEMINI_TYPES | {si.tag(ParallelClaudeStep)}
LOOP_TYPES = frozenset({si.tag(ForLoopStep), si.tag(WhileLoopStep)})
NO_PROMPT_TYPES = frozenset(t for t in STEP_TYPES if "prompt" not in si.keys(STEP_MODEL_BY_TYPE[t]))
PROMPT_PART_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required fields, optional fields)
    si.tag(model): (
        tuple(k for k in si.required_keys(model) if k != si.TAG),
        tuple(k for k in si.keys(model) if k != si.TAG and k not in si.required_keys(model)),
    )
    for model in PROMPT_PART_MODELS
}

# --- known keys -------------------------------------------------------------------------

TOP_IGNORED = frozenset(k for k in si.keys(Workflow) if si.is_ignored(Workflow, k))
TOP_KEYS = frozenset(si.keys(Workflow)) - TOP_IGNORED
DEFAULTS_KEYS = frozenset(si.keys(Defaults))
COMMON_STEP_KEYS = frozenset({*si.keys(StepBase), si.TAG})
ENHANCED_KEYS = frozenset(si.own_keys(EnhancedClaudeStep, StepBase))
STEP_KEYS: dict[str, frozenset[str]] = {
    kind: frozenset(si.own_keys(model, StepBase)) for kind, model in STEP_MODEL_BY_TYPE.items()
}
CLAUDE_OPTION_KEYS = frozenset(si.keys(ClaudeOptions))

# --- enum values ------------------------------------------------------------------------

PRESETS = si.field_values(EnhancedClaudeStep, "preset")
OUTPUT_FORMATS = si.field_values(ClaudeOptions, "output_format")
EXTRACTION_FORMATS = si.field_values(ExtractionConfig, "format")
POST_PROCESSING = si.field_values(ExtractionConfig, "post_processing")  # others: skipped
BACKOFF = si.field_values(RetryConfig, "backoff_strategy")
FALLBACK_ACTIONS = si.field_values(RetryConfig, "fallback_action")  # others: warned
SET_SCOPES = si.field_values(SetVariableStep, "scope")
TRANSFORM_OPS: dict[str, tuple[str, ...]] = {
    si.tag(model, "operation"): tuple(k for k in si.required_keys(model) if k != "operation")
    for model in OPERATION_MODELS
}
AGGREGATE_FUNCTIONS = si.field_values(AggregateOp, "function")
SORT_ORDERS = si.field_values(SortOp, "order")
MAP_EXPRESSIONS = si.field_values(MapOp, "expression")
_FILE_OP_REQUIRES = si.field_extra(FileOpsStep, "operation")["x-requires"]
FILE_OPS: dict[str, tuple[str, ...]] = {
    op: tuple(_FILE_OP_REQUIRES[op]) for op in si.field_values(FileOpsStep, "operation")
}
CONVERT_FORMATS = si.field_values(FileOpsStep, "format")

# --- results and limits (not the YAML's structure) --------------------------------------

SET_VARIABLE_RESULT = ("success", "variables_set", "scope", "variable_count")
MAX_WHILE_ITERATIONS = 1000
MAX_NESTED_DEPTH = 10
LOOP_CONTEXT_KEYS = frozenset({"index", "total", "first", "last", "level", "parent"})
