"""Option maps: retries, Claude options, Gemini token budgets."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from elexirion_app.pipelines.spec.base import (
    TEXTAREA,
    UNUSED,
    Backoff,
    Bool,
    FallbackAction,
    Int,
    Number,
    OutputFormat,
    SpecModel,
    TemplateStr,
    deprecated,
)


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
