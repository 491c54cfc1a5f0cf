"""LLM steps: ``claude``, ``gemini``, ``gemini_instructor``, ``parallel_claude``.

Every call goes through ``call_model``, which forwards provider stream events to observers
(``StepDelta``), turns each provider attempt into an ``LLMCallFinished`` event, and meters
usage and cost. The enhanced ``claude_*`` types live in ``enhanced.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from elexirion_app.core import pricing
from elexirion_app.core.errors import (
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderTimeout,
    RateLimited,
    StepError,
)
from elexirion_app.core.events import LLMCallFinished, StepDelta
from elexirion_app.core.models import resolve_model
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.core.types import (
    ChatMessage,
    FunctionSpec,
    LLMRequest,
    LLMResponse,
    StreamEvent,
    Usage,
)
from elexirion_app.pipelines.run_setup import write_output
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.steps.prompt import build_prompt
from elexirion_app.pipelines.steps.util import gather_or_cancel
from elexirion_app.providers.base import ThinkingRequest, complete
from elexirion_app.providers.metered import call_context, current_context, in_call_context
from elexirion_app.providers.registry import metered_provider

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

log = logging.getLogger(__name__)
DEFAULT_MAX_TOKENS = 4096
DEFAULT_THINKING_BUDGET = 4096  # ``thinking: true`` without a budget
MIN_THINKING_BUDGET = 1024  # the Messages API's minimum ``budget_tokens``
# Provider failures that switch a Claude step to its ``fallback_model`` (after the retries):
# the model is unavailable or slow right now. Auth errors and other 4xx answers are not: the
# fallback would fail the same way. A ``ProviderError`` with a 5xx status also qualifies.
FALLBACK_ERRORS = (RateLimited, ProviderOverloaded, ProviderTimeout, ProviderConnectionError)


def _price(model: str, usage: Usage) -> Decimal:
    """Cost of one attempt from the price table (``core.pricing.cost``: 0 for an unknown or
    offline model, never an exception by design, so any error is a bug and propagates)."""
    if not usage.total:
        return Decimal("0")
    return pricing.cost(model, usage)


async def call_model(
    ctx: RunContext, request: LLMRequest, *, step: str | None = None, first_attempt: int = 1
) -> LLMResponse:
    """One model call with events and metering; raises ``ProviderError`` on failure.

    The provider is metered (``providers.metered``): the call is reserved against the run's
    and user's budgets (``BudgetExceeded`` before anything is sent) and every attempt is
    booked in the ledger with this run, step and pipeline. The step's and run's totals add
    every attempt at the ledger's price (failed attempts too), and the response's ``cost``
    is what its successful attempts were booked at, so every total is a sum of ledger rows.
    ``first_attempt`` numbers this call's attempt records after earlier calls of the same
    step (the fallback model's attempts follow the primary model's).
    """
    step_name = step or ctx.current_step
    provider = ctx.provider(request.provider)
    if in_call_context():  # a service runs this pipeline: budgets + ledger
        provider = metered_provider(provider)
    ctx.provider_calls[0] += 1
    attempts: list[Mapping[str, Any]] = []
    observed = bool(ctx.observers)

    async def on_event(event: StreamEvent) -> None:
        if event.kind == "attempt":
            attempts.append(event.data)
        elif event.kind != "done" and observed:
            await ctx.emit(StepDelta(run_id=ctx.run_id, step=step_name, event=event))

    response: LLMResponse | None = None
    pipeline = current_context().pipeline or str(ctx.workflow.get("name") or "")
    try:
        with call_context(
            caller="step",
            user_id=ctx.user_id,
            run_id=ctx.run_id,
            step=step_name,
            pipeline=pipeline,
            conversation_id=current_context().conversation_id,
        ):
            response = await complete(provider, request, on_event)
    finally:
        records = _attempt_records(request, attempts, response)
        for usage, cost, _ok in records:
            ctx.add_usage(usage, cost)
        await _emit_attempts(
            ctx, step_name, provider.name, request, records, attempts, first_attempt
        )
    assert response is not None  # complete() returned
    booked = sum((cost for _u, cost, ok in records if ok), Decimal("0"))
    return replace(response, cost=booked)


def _attempt_records(
    request: LLMRequest, attempts: list[Mapping[str, Any]], response: LLMResponse | None
) -> list[tuple[Usage, Decimal, bool]]:
    """(usage, cost, ok) of every attempt: the ledger's price when the provider is metered
    (``cost_usd`` in the attempt), else the price table's."""
    if not attempts and response is not None:
        cost = Decimal("0") if response.offline else response.cost
        return [(response.usage, cost, True)]
    out = []
    for a in attempts:
        usage = Usage.from_dict(a.get("usage") or {})
        if a.get("cost_usd") is not None:
            cost = Decimal(str(a["cost_usd"]))
        else:
            cost = _price(str(a.get("model") or request.model or ""), usage)
        out.append((usage, cost, not a.get("error")))
    return out


async def _emit_attempts(
    ctx: RunContext,
    step: str,
    provider: str,
    request: LLMRequest,
    records: list[tuple[Usage, Decimal, bool]],
    attempts: list[Mapping[str, Any]],
    first_attempt: int = 1,
) -> None:
    if not ctx.observers:
        return
    for i, (usage, cost, _ok) in enumerate(records):
        data = attempts[i] if i < len(attempts) else {}
        error = data.get("error")
        await ctx.emit(
            LLMCallFinished(
                run_id=ctx.run_id,
                step=step,
                model=str(data.get("model") or request.model or ""),
                provider=provider,
                usage=usage,
                cost=cost,
                latency_ms=float(data.get("latency_ms") or 0.0),
                attempt=first_attempt - 1 + int(data.get("attempt") or i + 1),
                status="error" if error else "ok",
                error=str(error) if error else None,
            )
        )


# --- request building ------------------------------------------------------------------------


def _timeout_s(*sources: Mapping[str, Any]) -> float | None:
    for src in sources:
        if src.get("timeout_ms") is not None:
            return float(src["timeout_ms"]) / 1000
        if src.get("timeout_seconds") is not None:
            return float(src["timeout_seconds"])
    return None


def _max_retries(*sources: Mapping[str, Any]) -> int | None:
    for src in sources:
        if src.get("max_retries") is not None:
            return int(src["max_retries"])
        retry = src.get("retry_config")
        if isinstance(retry, Mapping) and retry.get("max_retries") is not None:
            return int(retry["max_retries"])
    return None


def _tools(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return tuple(str(t) for t in value)


def claude_request(
    ctx: RunContext,
    step: Mapping[str, Any],
    options: Mapping[str, Any],
    prompt: str,
    *,
    kind: str = "claude",
    preset: str | None = None,
    history: Sequence[ChatMessage] = (),
    model: str | None = None,
) -> LLMRequest:
    system_parts = [
        str(options[k]) for k in ("system_prompt", "append_system_prompt") if options.get(k)
    ]
    workspace = ctx.workspace
    if options.get("cwd"):
        workspace = resolve_in_workspace(ctx.workspace, str(options["cwd"]))
        workspace.mkdir(parents=True, exist_ok=True)
    budget = thinking_budget(options, str(step.get("name") or step.get("id") or kind))
    extra: dict[str, Any] = {} if budget is None else {"thinking_budget": budget}
    request_type = LLMRequest if budget is None else ThinkingRequest
    return request_type(
        messages=(*history, ChatMessage("user", prompt)),
        provider="claude",
        model=resolve_model(model or options.get("model"), "claude").model_id,
        system="\n\n".join(system_parts) or None,
        max_tokens=int(options.get("max_tokens") or DEFAULT_MAX_TOKENS),
        temperature=options.get("temperature"),
        allowed_tools=_tools(options.get("allowed_tools")),
        disallowed_tools=_tools(options.get("disallowed_tools")),
        max_turns=int(options.get("max_turns") or 3),
        workspace=workspace,
        timeout_s=_timeout_s(options, step),
        max_retries=_max_retries(options, step),
        kind=kind,
        preset=preset,
        **extra,
    )


def thinking_budget(options: Mapping[str, Any], step: str) -> int | None:
    """The extended-thinking budget (tokens) a Claude step asks for, or None.

    ``claude_options.max_thinking_tokens: N`` (Claude Code's option, which pipeline_ex hands
    its ``claude_options`` to; 0 turns thinking off), or ``claude_options.thinking``: ``true``
    (a default budget), ``N``, ``{type: enabled, budget_tokens: N}`` or ``false`` /
    ``{type: disabled}``. A budget under the API's minimum (1024) is a step error.
    """
    raw: Any
    if options.get("max_thinking_tokens") is not None:
        raw = options["max_thinking_tokens"]
    else:
        value = options.get("thinking")
        if value is None or value is False:
            return None
        if value is True:
            return DEFAULT_THINKING_BUDGET
        if isinstance(value, Mapping):
            if str(value.get("type", "enabled")) == "disabled":
                return None
            raw = value.get("budget_tokens", DEFAULT_THINKING_BUDGET)
        else:
            raw = value
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise StepError(step, f"the thinking budget must be a number of tokens, not {raw!r}")
    try:
        budget = int(raw)
    except ValueError as exc:
        raise StepError(
            step, f"the thinking budget must be a number of tokens, not {raw!r}"
        ) from exc
    if budget <= 0:
        return None
    if budget < MIN_THINKING_BUDGET:
        raise StepError(step, f"the thinking budget is {budget} tokens; Claude needs at least 1024")
    return budget


def fallback_worthy(error: ProviderError) -> bool:
    """Whether ``error`` (after the provider's retries) should switch to ``fallback_model``."""
    if isinstance(error, ProviderAuthError):
        return False
    if isinstance(error, FALLBACK_ERRORS):
        return True
    return error.status is not None and error.status >= 500


async def call_claude(
    ctx: RunContext, step: Mapping[str, Any], request: LLMRequest, options: Mapping[str, Any]
) -> LLMResponse:
    """A Claude call that is retried once on ``fallback_model`` when the primary model fails
    with a provider error after its retries (overloaded, 5xx, rate limit, timeout, connection
    lost). The response's ``model`` is the model that answered; the attempts of both models
    are recorded (numbered on), so each one's cost row is kept."""
    try:
        return await call_model(ctx, request)
    except ProviderError as exc:
        fallback = options.get("fallback_model")
        if not fallback or not fallback_worthy(exc):
            raise
        model = resolve_model(str(fallback), "claude").model_id
        if model == request.model:
            raise
        log.warning(
            "claude model %s failed (%s); retrying once on the fallback model %s",
            request.model,
            type(exc).__name__,
            model,
        )
        return await call_model(
            ctx, _replace(request, model=model), first_attempt=max(exc.attempts, 1) + 1
        )


def _replace(request: LLMRequest, **changes: Any) -> LLMRequest:
    return replace(request, **changes)


def gemini_functions(ctx: RunContext, names: Any, step: str) -> tuple[FunctionSpec, ...]:
    if not names:
        return ()
    declared = ctx.workflow.get("gemini_functions") or {}
    specs = []
    for name in [names] if isinstance(names, str) else names:
        spec = declared.get(name)
        if not isinstance(spec, Mapping):
            raise StepError(step, f"function {name!r} is not declared in gemini_functions")
        specs.append(
            FunctionSpec(
                name=str(name),
                description=str(spec.get("description", "")),
                parameters=dict(spec.get("parameters") or {}),
            )
        )
    return tuple(specs)


def gemini_request(
    ctx: RunContext,
    step: Mapping[str, Any],
    prompt: str,
    name: str,
    *,
    kind: str = "gemini",
    response_schema: Mapping[str, Any] | None = None,
) -> LLMRequest:
    budget = step.get("token_budget") or {}
    return LLMRequest(
        messages=(ChatMessage("user", prompt),),
        provider="gemini",
        model=resolve_model(step.get("model"), "gemini").model_id,
        system=str(step["system_prompt"]) if step.get("system_prompt") else None,
        max_tokens=int(budget.get("max_output_tokens") or DEFAULT_MAX_TOKENS),
        temperature=budget.get("temperature"),
        top_p=budget.get("top_p"),
        top_k=budget.get("top_k"),
        functions=gemini_functions(ctx, step.get("functions"), name),
        response_schema=response_schema,
        timeout_s=_timeout_s(step),
        max_retries=_max_retries(step),
        kind=kind,
    )


# --- handlers ------------------------------------------------------------------------------


async def run_claude(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    options = step.get("claude_options") or {}
    prompt = await build_prompt(ctx, step.get("prompt"), scope, name)
    request = claude_request(ctx, step, options, prompt)
    response = await call_claude(ctx, step, request, options)
    return response.to_result()


async def run_gemini(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    prompt = await build_prompt(ctx, step.get("prompt"), scope, name)
    response = await call_model(ctx, gemini_request(ctx, step, prompt, name))
    return response.to_result(gemini=True)


def _instructor_schema(ctx: RunContext, step: Mapping[str, Any], name: str) -> dict[str, Any]:
    for key in ("response_schema", "output_schema", "schema"):
        if isinstance(step.get(key), Mapping):
            return dict(step[key])
    functions = gemini_functions(ctx, step.get("functions"), name)
    if functions:
        return dict(functions[0].parameters)
    return {"type": "object"}


async def run_gemini_instructor(
    ctx: RunContext, step: dict[str, Any], scope: Scope, name: str
) -> Any:
    prompt = await build_prompt(ctx, step.get("prompt"), scope, name)
    schema = _instructor_schema(ctx, step, name)
    request = gemini_request(
        ctx,
        {**step, "functions": None},
        prompt,
        name,
        kind="gemini_instructor",
        response_schema=schema,
    )
    response = await call_model(ctx, request)
    result = response.to_result(gemini=True)
    result.setdefault("structured", None)
    return result


async def run_parallel_claude(
    ctx: RunContext, step: dict[str, Any], scope: Scope, name: str
) -> Any:
    tasks = [t for t in step.get("parallel_tasks") or [] if isinstance(t, Mapping)]
    if not tasks:
        raise StepError(name, "parallel_claude needs at least one entry in parallel_tasks")

    async def one(index: int, task: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        task_id = str(task.get("id") or f"task_{index + 1}")
        options = task.get("claude_options") or {}
        prompt = await build_prompt(ctx, task.get("prompt"), scope, f"{name}.{task_id}")
        request = claude_request(ctx, task, options, prompt)
        response = await call_claude(ctx, task, request, options)
        result = response.to_result()
        if task.get("output_to_file"):
            write_output(ctx.output_dir, str(task["output_to_file"]), result)
        return task_id, result

    pairs = await gather_or_cancel(one(i, t) for i, t in enumerate(tasks))
    individual = dict(pairs)
    combined = "".join(f"\n===[{tid}]===\n{res['text']}" for tid, res in pairs)
    usage = sum((Usage.from_dict(r["tokens"]) for r in individual.values()), Usage())
    return {
        "success": True,
        "text": combined,
        "combined_results": combined,
        "individual_results": individual,
        "cost": sum(r["cost"] for r in individual.values()),
        "tokens": usage.to_dict(),
    }
