"""The tables validation knows: step types and their families, known keys, enum values, limits.

Every check module reads these names from here (through ``checks.context``'s imports or
directly); ``pipelines/validate.py`` re-exports them for older callers.
"""

from __future__ import annotations

STEP_TYPES = (
    "set_variable",
    "claude",
    "gemini",
    "parallel_claude",
    "gemini_instructor",
    "claude_smart",
    "claude_session",
    "claude_extract",
    "claude_batch",
    "claude_robust",
    "for_loop",
    "while_loop",
    "data_transform",
    "file_ops",
    "pipeline",
)
# pipeline_ex's test-suite step (echoes ``value``); its test fixtures use it.
TEST_STEP_TYPES = ("test_echo",)
CLAUDE_TYPES = frozenset(
    {"claude", "claude_smart", "claude_session", "claude_extract", "claude_batch", "claude_robust"}
)
ENHANCED_TYPES = CLAUDE_TYPES - {"claude"}
GEMINI_TYPES = frozenset({"gemini", "gemini_instructor"})
LLM_TYPES = CLAUDE_TYPES | GEMINI_TYPES | {"parallel_claude"}
LOOP_TYPES = frozenset({"for_loop", "while_loop"})
NO_PROMPT_TYPES = frozenset(
    {"parallel_claude", "set_variable", "pipeline", "data_transform", "file_ops", *LOOP_TYPES}
)
PROMPT_PART_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required fields, optional fields)
    "static": (("content",), ()),
    "file": (("path",), ()),
    "previous_response": (("step",), ("extract", "strict", "extract_with")),
    "session_context": ((), ("session_id", "include_last_n")),
    "claude_continue": ((), ("session_id", "new_prompt")),
}

# --- known keys -------------------------------------------------------------------------

TOP_KEYS = frozenset(
    {
        "name",
        "steps",
        "workspace_dir",
        "checkpoint_dir",
        "checkpoint_enabled",
        "defaults",
        "global_vars",
        "gemini_functions",
        "variables",
        "inputs",
        "environment",
        "description",
        "version",
        "metadata",
    }
)
TOP_IGNORED = frozenset(
    {
        "claude_auth",
        "input",
        "hooks",
        "mcp_servers",
        "agents",
        "enable_skills",
        "setting_sources",
        "memory_config",
    }
)
DEFAULTS_KEYS = frozenset(
    {
        "output_dir",
        "claude_preset",
        "gemini_model",
        "gemini_token_budget",
        "claude_options",
        "claude_output_format",
        "model",
        "claude_model",
    }
)
COMMON_STEP_KEYS = frozenset({"name", "type", "condition", "output_to_file", "role", "description"})
IGNORED_STEP_KEYS = frozenset({"output_schema", "options"})
ENHANCED_KEYS = frozenset(
    {
        "prompt",
        "claude_options",
        "preset",
        "permission_mode",
        "session_id",
        "timeout_ms",
        "retry_config",
        "debug_mode",
        "cost_tracking",
        "model",
    }
)
STEP_KEYS: dict[str, frozenset[str]] = {
    "claude": frozenset({"prompt", "claude_options", "model"}),
    "gemini": frozenset({"prompt", "model", "token_budget", "functions", "timeout_ms"}),
    "gemini_instructor": frozenset(
        {"prompt", "model", "token_budget", "functions", "timeout_ms", "schema", "response_schema"}
    ),
    "parallel_claude": frozenset({"parallel_tasks", "max_parallel"}),
    "claude_smart": ENHANCED_KEYS | {"environment_aware"},
    "claude_session": ENHANCED_KEYS | {"session_config"},
    "claude_extract": ENHANCED_KEYS | {"extraction_config"},
    "claude_batch": ENHANCED_KEYS | {"tasks", "batch_config"},
    "claude_robust": ENHANCED_KEYS,
    "set_variable": frozenset({"variables", "scope", "variable", "value"}),
    "for_loop": frozenset(
        {
            "iterator",
            "data_source",
            "steps",
            "parallel",
            "max_parallel",
            "break_on_error",
            "break_condition",
            "continue_condition",
            "batch_size",
        }
    ),
    "while_loop": frozenset({"condition", "steps", "max_iterations", "timeout_seconds"}),
    "data_transform": frozenset({"input_source", "operations", "output_field", "output_format"}),
    "file_ops": frozenset(
        {"operation", "source", "destination", "path", "pattern", "files", "format"}
    ),
    "pipeline": frozenset({"pipeline_file", "pipeline", "inputs", "outputs", "config"}),
    "test_echo": frozenset({"value"}),
}
CLAUDE_OPTION_KEYS = frozenset(
    {
        "max_turns",
        "allowed_tools",
        "disallowed_tools",
        "system_prompt",
        "append_system_prompt",
        "verbose",
        "cwd",
        "model",
        "fallback_model",
        "max_thinking_tokens",
        "thinking",
        "output_format",
        "timeout_ms",
        "timeout_seconds",
        "retry_config",
        "debug_mode",
        "cost_tracking",
        "permission_mode",
        "session_id",
        "print",
        "telemetry_enabled",
        "max_tokens",
        "temperature",
    }
)
PRESETS = ("development", "production", "analysis", "chat")
OUTPUT_FORMATS = ("text", "json", "stream_json")
EXTRACTION_FORMATS = ("text", "json", "structured", "summary", "markdown")
POST_PROCESSING = (
    "extract_code_blocks",
    "extract_recommendations",
    "extract_links",
    "extract_key_points",
    "format_markdown",
    "generate_summary",
)
BACKOFF = ("linear", "exponential", "fixed")
FALLBACK_ACTIONS = (
    "graceful_degradation",
    "use_cached_response",
    "simplified_prompt",
    "emergency_response",
)
SET_SCOPES = ("global", "session", "loop")
TRANSFORM_OPS: dict[str, tuple[str, ...]] = {
    "filter": ("field", "condition"),
    "map": ("field",),
    "aggregate": ("field", "function"),
    "join": ("left_field", "right_source", "join_key"),
    "group_by": ("field",),
    "sort": ("field",),
}
AGGREGATE_FUNCTIONS = ("sum", "average", "count", "max", "min", "first", "last", "unique")
FILE_OPS: dict[str, tuple[str, ...]] = {
    "copy": ("source", "destination"),
    "move": ("source", "destination"),
    "delete": ("path",),
    "validate": ("files",),
    "list": ("path",),
    "convert": ("source", "destination", "format"),
}
CONVERT_FORMATS = ("csv_to_json", "json_to_csv", "yaml_to_json")
SET_VARIABLE_RESULT = ("success", "variables_set", "scope", "variable_count")
MAX_WHILE_ITERATIONS = 1000
MAX_NESTED_DEPTH = 10
LOOP_CONTEXT_KEYS = frozenset({"index", "total", "first", "last", "level", "parent"})
