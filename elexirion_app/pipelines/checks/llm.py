"""LLM steps: models, Claude options, the enhanced Claude steps, extraction, batch, parallel.

CONTRACT:
- ``check_llm(ctx, step, path)``: the per-type check of every Claude and Gemini step type.
- ``check_parallel(ctx, step, path)``: ``parallel_claude``'s tasks.
- ``check_model(ctx, name, path, provider)`` and ``check_claude_options(ctx, options, path)``
  are shared with ``defaults`` (``checks.structure``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from elexirion_app.core.models import CLAUDE_ALIASES, price_map, resolve_model
from elexirion_app.pipelines.checks.context import Ctx, check_enum, nearest, templated
from elexirion_app.pipelines.checks.paths import check_output_file
from elexirion_app.pipelines.checks.prompts import check_prompt
from elexirion_app.pipelines.checks.tables import (
    BACKOFF,
    CLAUDE_OPTION_KEYS,
    CLAUDE_TYPES,
    ENHANCED_TYPES,
    EXTRACTION_FORMATS,
    FALLBACK_ACTIONS,
    GEMINI_TYPES,
    OUTPUT_FORMATS,
    POST_PROCESSING,
    PRESETS,
)


def check_llm(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    kind = str(step.get("type"))
    if kind in CLAUDE_TYPES:
        check_claude_options(ctx, step.get("claude_options"), (*path, "claude_options"))
        check_model(ctx, step.get("model"), (*path, "model"), "claude")
    if kind in GEMINI_TYPES:
        check_model(ctx, step.get("model"), (*path, "model"), "gemini")
        budget = step.get("token_budget")
        if budget is not None and not isinstance(budget, dict):
            ctx.add((*path, "token_budget"), "token_budget must be a map")
        functions = step.get("functions")
        if functions is not None:
            _check_function_refs(ctx, functions, (*path, "functions"))
    if kind in ENHANCED_TYPES:
        _check_enhanced(ctx, step, path)


def check_model(ctx: Ctx, name: Any, path: tuple[Any, ...], provider: str) -> None:
    if name is None:
        return
    if not isinstance(name, str):
        ctx.add(path, "a model name must be text")
        return
    if "{{" in name:
        return
    info = resolve_model(name, provider)
    family = "gemini" if provider == "gemini" else "claude"
    if not info.known:
        ctx.add(path, f"unknown model '{name}'", _model_hint(name, provider))
    elif not info.model_id.startswith(family) and info.model_id != "offline-demo":
        label = "Gemini" if family == "gemini" else "Claude"
        ctx.add(path, f"'{name}' is not a {label} model", _model_hint(name, provider))
    elif info.retired:
        ctx.warn(path, f"model '{name}' is retired; it runs as '{info.model_id}'")


def _model_hint(name: str, provider: str) -> str:
    if provider == "claude" or name.startswith("claude"):
        candidates = [*CLAUDE_ALIASES, *(k for k in price_map() if k.startswith("claude-"))]
    else:
        candidates = [k.split("/", 1)[-1] for k in price_map() if "gemini-" in k]
    close = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return "use haiku, sonnet, opus or a gemini-2.5-* model"


def check_claude_options(ctx: Ctx, options: Any, path: tuple[Any, ...]) -> None:
    if options is None:
        return
    if not isinstance(options, dict):
        ctx.add(path, "claude_options must be a map")
        return
    for key in options:
        if key not in CLAUDE_OPTION_KEYS:
            ctx.warn(
                (*path, key),
                f"unknown claude_options key '{key}' (ignored)",
                nearest(str(key), CLAUDE_OPTION_KEYS),
            )
    check_model(ctx, options.get("model"), (*path, "model"), "claude")
    check_model(ctx, options.get("fallback_model"), (*path, "fallback_model"), "claude")
    check_enum(ctx, options, "output_format", OUTPUT_FORMATS, path)
    turns = options.get("max_turns")
    if turns is not None and (not isinstance(turns, int) or isinstance(turns, bool) or turns < 1):
        ctx.add((*path, "max_turns"), "max_turns must be a positive whole number")
    for tools_key in ("allowed_tools", "disallowed_tools"):
        tools = options.get(tools_key)
        if tools is not None and not isinstance(tools, list):
            ctx.add((*path, tools_key), f"{tools_key} must be a list of tool names")
    if isinstance(options.get("retry_config"), dict):
        check_enum(
            ctx, options["retry_config"], "backoff_strategy", BACKOFF, (*path, "retry_config")
        )


def _check_function_refs(ctx: Ctx, functions: Any, path: tuple[Any, ...]) -> None:
    if not isinstance(functions, list):
        ctx.add(path, "functions must be a list of gemini_functions names")
        return
    for k, fname in enumerate(functions):
        if str(fname) not in ctx.functions:
            ctx.add(
                (*path, k),
                f"function '{fname}' is not defined in gemini_functions",
                nearest(str(fname), ctx.functions),
            )


def _check_enhanced(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    kind = step.get("type")
    check_enum(ctx, step, "preset", PRESETS, path)
    retry = step.get("retry_config")
    if isinstance(retry, dict):
        rpath = (*path, "retry_config")
        check_enum(ctx, retry, "backoff_strategy", BACKOFF, rpath)
        action = retry.get("fallback_action")
        if action is not None and action not in FALLBACK_ACTIONS:
            ctx.warn(
                (*rpath, "fallback_action"),
                f"unknown fallback_action {action!r} (graceful_degradation is used)",
                nearest(str(action), FALLBACK_ACTIONS),
            )
    elif retry is not None:
        ctx.add((*path, "retry_config"), "retry_config must be a map")
    if kind == "claude_extract":
        _check_extraction(ctx, step.get("extraction_config"), (*path, "extraction_config"))
    if kind == "claude_batch":
        _check_batch(ctx, step, path)
    session_config = step.get("session_config")
    if (
        kind == "claude_session"
        and session_config is not None
        and not isinstance(session_config, dict)
    ):
        ctx.add((*path, "session_config"), "session_config must be a map")


def _check_extraction(ctx: Ctx, config: Any, path: tuple[Any, ...]) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        ctx.add(path, "extraction_config must be a map")
        return
    check_enum(ctx, config, "format", EXTRACTION_FORMATS, path)
    post = config.get("post_processing")
    if post is None:
        return
    if not isinstance(post, list):
        ctx.add((*path, "post_processing"), "post_processing must be a list")
        return
    for k, item in enumerate(post):
        if item not in POST_PROCESSING:
            ctx.warn(
                (*path, "post_processing", k),
                f"unknown post_processing step {item!r} (skipped)",
                nearest(str(item), POST_PROCESSING),
            )


def _check_batch(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    tasks = step.get("tasks")
    if tasks is None or templated(tasks):
        return
    if not isinstance(tasks, list):
        ctx.add((*path, "tasks"), "tasks must be a list")
        return
    for k, task in enumerate(tasks):
        tpath = (*path, "tasks", k)
        if not isinstance(task, dict):
            ctx.add(tpath, "a batch task must be a map with 'prompt' or 'file'")
        elif "prompt" not in task and "file" not in task:
            ctx.add(tpath, "a batch task needs 'prompt' or 'file'")
        elif isinstance(task.get("prompt"), (list, str)):
            check_prompt(ctx, task["prompt"], (*tpath, "prompt"))


def check_parallel(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    tasks = step.get("parallel_tasks")
    tpath = (*path, "parallel_tasks")
    if templated(tasks):
        return
    if not isinstance(tasks, list) or not tasks:
        ctx.add(
            tpath if tasks is not None else path,
            "parallel_claude needs a non-empty "
            "'parallel_tasks' list of {id, prompt, claude_options}",
        )
        return
    ids: set[str] = set()
    for k, task in enumerate(tasks):
        kpath = (*tpath, k)
        if not isinstance(task, dict):
            ctx.add(kpath, "a parallel task must be a map with id and prompt")
            continue
        task_id = task.get("id")
        if task_id is None:
            ctx.add(kpath, "a parallel task needs an 'id'")
        elif str(task_id) in ids:
            ctx.add((*kpath, "id"), f"duplicate parallel task id '{task_id}'")
        else:
            ids.add(str(task_id))
        prompt = task.get("prompt")
        if prompt is None:
            ctx.add(kpath, "a parallel task needs a 'prompt' list")
        elif isinstance(prompt, (list, str)):
            check_prompt(ctx, prompt, (*kpath, "prompt"))
        check_claude_options(ctx, task.get("claude_options"), (*kpath, "claude_options"))
        check_output_file(ctx, task.get("output_to_file"), (*kpath, "output_to_file"))
