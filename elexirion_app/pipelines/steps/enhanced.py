"""Enhanced Claude steps: ``claude_smart``, ``claude_session``, ``claude_extract``,
``claude_batch``, ``claude_robust`` (pipeline_ex's OptionBuilder presets)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from elexirion_app.core.errors import ElexirionError, ProviderError, StepError
from elexirion_app.core.types import ChatMessage, LLMResponse, Usage
from elexirion_app.pipelines.defaults import deep_merge
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.steps.extraction import apply_extraction
from elexirion_app.pipelines.steps.llm import call_claude, claude_request
from elexirion_app.pipelines.steps.prompt import build_prompt, read_workspace_file, session_text

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

PRESETS: dict[str, dict[str, Any]] = {
    "development": {
        "max_turns": 10,
        "allowed_tools": ["Write", "Edit", "Read", "Glob", "Grep"],
        "verbose": True,
        "timeout_ms": 300_000,
    },
    "production": {"max_turns": 3, "allowed_tools": ["Read"], "timeout_ms": 120_000},
    "analysis": {"max_turns": 5, "allowed_tools": ["Read", "Glob", "Grep"], "timeout_ms": 180_000},
    "chat": {"max_turns": 1, "allowed_tools": [], "timeout_ms": 60_000},
}
SMART_TOOLS = {"production": ["Read"], "analysis": ["Read", "Glob", "Grep"], "chat": []}
TYPE_PRESET = {
    "claude_smart": "development",
    "claude_session": "analysis",
    "claude_extract": "analysis",
    "claude_batch": "development",
    "claude_robust": "production",
}
_CACHE_SIZE = 256
# ``claude_robust``'s ``use_cached_response`` answers, one cache per run (never shared between
# runs, hence never between users). The key is the run's ``run_meter``: the one object a run
# and its nested pipelines share (``RunContext.child`` copies it) that can be weakly
# referenced; the entry goes away with the run. (A ``RunContext`` field would be simpler:
# the executor belongs to another part of the code base.)
_RUN_CACHES: dict[int, OrderedDict[str, dict[str, Any]]] = {}


def run_cache(ctx: RunContext) -> OrderedDict[str, dict[str, Any]]:
    """The ``claude_robust`` response cache of this run (shared with its nested pipelines)."""
    anchor = ctx.run_meter
    key = id(anchor)
    cache = _RUN_CACHES.get(key)
    if cache is None:
        cache = OrderedDict()
        _RUN_CACHES[key] = cache
        # runs before ``key`` can be reused by another object: the anchor is still alive
        weakref.finalize(anchor, _RUN_CACHES.pop, key, None)
    return cache


def _cache_key(preset: str, options: Mapping[str, Any], prompt: str) -> str:
    parts = [preset, str(options.get("model") or ""), str(options.get("system_prompt") or "")]
    return hashlib.sha256("\n".join([*parts, prompt]).encode()).hexdigest()


def preset_of(step: Mapping[str, Any]) -> str:
    preset = str(step.get("preset") or TYPE_PRESET.get(str(step.get("type")), "development"))
    return preset if preset in PRESETS else "development"


def options_for(step: Mapping[str, Any], preset: str) -> dict[str, Any]:
    options = deep_merge(PRESETS[preset], step.get("claude_options") or {})
    if step.get("type") == "claude_smart" and preset in SMART_TOOLS:
        options["allowed_tools"] = list(SMART_TOOLS[preset])
    for key in ("timeout_ms", "permission_mode", "session_id", "debug_mode", "cost_tracking"):
        if step.get(key) is not None:
            options[key] = step[key]
    return options


async def _call(
    ctx: RunContext,
    step: Mapping[str, Any],
    prompt: str,
    preset: str,
    options: Mapping[str, Any],
    history: tuple[ChatMessage, ...] = (),
) -> LLMResponse:
    kind = str(step.get("type"))
    request = claude_request(ctx, step, options, prompt, kind=kind, preset=preset, history=history)
    return await call_claude(ctx, step, request, options)


def _base_result(response: LLMResponse, preset: str) -> dict[str, Any]:
    result = response.to_result()
    result["preset"] = preset
    return result


# --- claude_smart --------------------------------------------------------------------------


async def run_claude_smart(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    preset = preset_of(step)
    options = options_for(step, preset)
    prompt = await build_prompt(ctx, step.get("prompt"), scope, name)
    result = _base_result(await _call(ctx, step, prompt, preset, options), preset)
    environment = ctx.workflow.get("environment") or {}
    result["claude_smart_metadata"] = {
        "preset": preset,
        "environment_aware": bool(step.get("environment_aware")),
        "environment": environment.get("mode", preset)
        if isinstance(environment, Mapping)
        else preset,
        "allowed_tools": list(options.get("allowed_tools") or []),
        "max_turns": options.get("max_turns"),
    }
    return result


# --- claude_session ------------------------------------------------------------------------


async def run_claude_session(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    preset = preset_of(step)
    options = options_for(step, preset)
    config = step.get("session_config") or {}
    session_name = str(config.get("session_name") or step.get("session_id") or name)
    turns = ctx.sessions.setdefault(session_name, [])
    history: list[ChatMessage] = []
    stored = await session_text(ctx, str(step.get("session_id") or session_name))
    if stored:  # history kept by the session store (e.g. the chat agent): system context
        extra = f"Earlier conversation in this session:\n{stored}"
        previous = options.get("append_system_prompt")
        options["append_system_prompt"] = f"{previous}\n\n{extra}" if previous else extra
    for user, assistant in turns:
        history += [ChatMessage("user", user), ChatMessage("assistant", assistant)]
    prompt = await build_prompt(ctx, step.get("prompt"), scope, name)
    response = await _call(ctx, step, prompt, preset, options, tuple(history))
    turns.append((prompt, response.text))
    result = _base_result(response, preset)
    result["claude_session_metadata"] = {
        "session_name": session_name,
        "session_id": f"{ctx.run_id}:{session_name}",
        "persist": bool(config.get("persist", False)),
        "checkpoint_frequency": config.get("checkpoint_frequency"),
        "description": config.get("description", ""),
        "interaction_count": len(turns),
        "continued": len(turns) > 1 or bool(stored),
    }
    return result


# --- claude_extract ------------------------------------------------------------------------


async def run_claude_extract(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    preset = preset_of(step)
    options = options_for(step, preset)
    config = step.get("extraction_config") or {}
    prompt = await build_prompt(ctx, step.get("prompt"), scope, name)
    response = await _call(ctx, step, prompt, preset, options)
    result = _base_result(response, preset)
    text, extracted = apply_extraction(response.text, config)
    result["text"] = text
    result["extraction_applied"] = True
    result["extracted"] = extracted
    if config.get("include_metadata"):
        result["extraction_metadata"] = {
            "format": config.get("format", "text"),
            "post_processing": list(config.get("post_processing") or []),
            "original_length": len(response.text),
            "extracted_length": len(text),
        }
    return result


# --- claude_batch --------------------------------------------------------------------------


async def run_claude_batch(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    preset = preset_of(step)
    options = options_for(step, preset)
    config = step.get("batch_config") or {}
    max_parallel = max(1, min(int(config.get("max_parallel") or 3), 10))
    timeout_s = float(config.get("timeout_per_task") or 60_000) / 1000
    tasks = [t for t in step.get("tasks") or [] if isinstance(t, Mapping)]
    if not tasks:
        raise StepError(name, "claude_batch needs a non-empty tasks list")
    shared = await build_prompt(ctx, step.get("prompt"), scope, name) if step.get("prompt") else ""
    semaphore = asyncio.Semaphore(max_parallel)

    async def one(index: int, task: Mapping[str, Any]) -> dict[str, Any]:
        task_id = str(task.get("task_id") or task.get("id") or f"task_{index + 1}")
        started = time.perf_counter()
        entry: dict[str, Any] = {"task_id": task_id, "file": task.get("file")}
        async with semaphore:
            try:
                parts = [shared] if shared else []
                if task.get("prompt"):
                    parts.append(await build_prompt(ctx, task["prompt"], scope, name))
                if task.get("file"):
                    parts.append(read_workspace_file(ctx, str(task["file"]), name))
                prompt = "\n".join(parts)
                response = await asyncio.wait_for(
                    _call(ctx, step, prompt, preset, options), timeout=timeout_s
                )
                entry.update(status="success", result=response.to_result())
            except TimeoutError:
                entry.update(status="timeout", result=None, error=f"timed out after {timeout_s}s")
            except ElexirionError as exc:
                entry.update(status="error", result=None, error=exc.user_message)
        entry["execution_time_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return entry

    batch = await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks)))
    ok = [b for b in batch if b["status"] == "success"]
    lines = [f"# Batch results ({len(ok)}/{len(batch)} succeeded)", ""]
    for entry in batch:
        lines.append(f"## {entry['task_id']} ({entry['status']})")
        lines.append("")
        lines.append(entry["result"]["text"] if entry["result"] else entry.get("error", ""))
        lines.append("")
    usage = sum((Usage.from_dict(b["result"]["tokens"]) for b in ok), Usage())
    result: dict[str, Any] = {
        "success": len(ok) == len(batch),
        "total_tasks": len(batch),
        "successful_tasks": len(ok),
        "failed_tasks": len(batch) - len(ok),
        "batch_results": list(batch),
        "text": "\n".join(lines).rstrip() + "\n",
        "cost": sum(b["result"]["cost"] for b in ok),
        "tokens": usage.to_dict(),
        "preset": preset,
    }
    if not ok:
        raise StepError(name, f"all {len(batch)} batch tasks failed")
    return result


# --- claude_robust -------------------------------------------------------------------------


def _retry_config(step: Mapping[str, Any]) -> dict[str, Any]:
    nested = (step.get("claude_options") or {}).get("retry_config") or {}
    config = deep_merge(nested, step.get("retry_config") or {})
    if "retry_conditions" not in config and "retry_on" in config:
        config["retry_conditions"] = config["retry_on"]
    return config


def backoff_delay_s(strategy: str, base_ms: float, attempt: int) -> float:
    """Delay before retry number ``attempt`` (1-based), capped at 30 s."""
    if strategy == "exponential":
        delay = base_ms * (2 ** (attempt - 1))
    elif strategy == "fixed":
        delay = base_ms
    else:  # linear
        delay = base_ms * attempt
    return min(delay, 30_000) / 1000


def _retryable(exc: Exception, conditions: list[str]) -> bool:
    if not conditions:
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    for cond in conditions:
        c = str(cond).lower()
        if c in text or (c == "api_error" and isinstance(exc, ProviderError)):
            return True
        if c == "timeout" and ("timeout" in text or "timed out" in text):
            return True
    return False


def _simplify(prompt: str) -> str:
    first = prompt.strip().split("\n\n", 1)[0]
    return first[:500]


async def run_claude_robust(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    preset = preset_of(step)
    options = options_for(step, preset)
    config = _retry_config(step)
    max_retries = max(0, min(int(config.get("max_retries", 3)), 10))
    strategy = str(config.get("backoff_strategy") or "exponential")
    base_ms = float(config.get("base_delay_ms", 1000))
    conditions = [str(c) for c in config.get("retry_conditions") or []]
    fallback = config.get("fallback_action")
    prompt = await build_prompt(ctx, step.get("prompt"), scope, name)
    cache_key = _cache_key(preset, options, prompt)
    errors: list[str] = []
    attempts = 0
    last_exc: Exception | None = None
    for attempt in range(max_retries + 1):
        attempts += 1
        try:
            response = await _call(ctx, step, prompt, preset, options)
        except (ProviderError, TimeoutError) as exc:
            last_exc = exc
            errors.append(str(exc) or type(exc).__name__)
            if attempt < max_retries and _retryable(exc, conditions):
                await asyncio.sleep(backoff_delay_s(strategy, base_ms, attempt + 1))
                continue
            break
        result = _base_result(response, preset)
        cache = run_cache(ctx)
        cache[cache_key] = copy.deepcopy(result)
        cache.move_to_end(cache_key)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
        result["robustness_metadata"] = _meta(attempts, strategy, errors, None, fallback)
        return result
    return await _fallback(
        ctx,
        step,
        prompt,
        preset,
        options,
        fallback,
        cache_key,
        attempts,
        strategy,
        errors,
        last_exc,
        name,
    )


def _meta(
    attempts: int, strategy: str, errors: list[str], used: str | None, configured: Any
) -> dict[str, Any]:
    return {
        "attempts": attempts,
        "retries": max(attempts - 1, 0),
        "backoff_strategy": strategy,
        "errors": list(errors),
        "fallback_action": configured,
        "fallback_used": used,
    }


async def _fallback(
    ctx: RunContext,
    step: Mapping[str, Any],
    prompt: str,
    preset: str,
    options: Mapping[str, Any],
    action: Any,
    cache_key: str,
    attempts: int,
    strategy: str,
    errors: list[str],
    last_exc: Exception | None,
    name: str,
) -> dict[str, Any]:
    degraded = {
        "success": True,
        "text": "The model is temporarily unavailable; this is a degraded response.",
        "cost": 0.0,
        "model": "",
        "tokens": Usage().to_dict(),
        "latency_ms": 0.0,
        "preset": preset,
        "degraded": True,
    }
    used = str(action) if action else None
    result: dict[str, Any] | None = None
    if action in ("use_cached_response", "cached_response"):
        cached = run_cache(ctx).get(cache_key)
        result = copy.deepcopy(cached) if cached else None
        if result is None:
            used = "graceful_degradation"
    elif action == "simplified_prompt":
        try:
            response = await _call(ctx, step, _simplify(prompt), preset, options)
            result = _base_result(response, preset)
        except (ProviderError, TimeoutError) as exc:
            errors.append(str(exc))
            used = "graceful_degradation"
    elif action == "emergency_response":
        result = {
            **degraded,
            "text": "Emergency response: the model could not be reached. Please retry later.",
        }
    elif action != "graceful_degradation":
        message = errors[-1] if errors else "the model failed"
        raise StepError(name, f"failed after {attempts} attempt(s): {message}") from last_exc
    result = result or dict(degraded)
    result["robustness_metadata"] = _meta(attempts, strategy, errors, used, action)
    return result
