"""The shape of a workflow: top-level keys, defaults, inputs, gemini_functions, step keys.

CONTRACT:
- ``check_top_keys(ctx, wf, prefix)``: unknown keys warn (with the nearest known one), ignored
  keys warn, a non-empty ``hooks:`` is an error.
- ``check_defaults``, ``check_inputs``, ``check_functions``: the sections of the same names
  (``check_inputs`` and ``check_functions`` also record what they declare in ``ctx``).
- ``check_step_keys(ctx, step, kind, path)``: unknown and ignored keys of a step warn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elexirion_app.pipelines.checks.context import Ctx, check_enum, nearest
from elexirion_app.pipelines.checks.llm import check_claude_options, check_model
from elexirion_app.pipelines.checks.tables import (
    COMMON_STEP_KEYS,
    DEFAULTS_KEYS,
    IGNORED_STEP_KEYS,
    PRESETS,
    STEP_KEYS,
    TOP_IGNORED,
    TOP_KEYS,
)
from elexirion_app.pipelines.defaults import declared_inputs


def check_top_keys(ctx: Ctx, wf: Mapping[str, Any], prefix: tuple[Any, ...]) -> None:
    for key in wf:
        if key in TOP_KEYS:
            continue
        path = (*prefix, key)
        if key == "hooks" and wf[key]:
            ctx.add(
                path,
                "tool hooks are not executed: the hooks declared here (e.g. security checks "
                "before a tool runs) would silently not run",
                "remove 'hooks:' to run this pipeline knowingly without them",
            )
        elif key in TOP_IGNORED:
            ctx.warn(path, f"'{key}' is ignored by pipeline_ex and by us")
        else:
            ctx.warn(path, f"unknown workflow key '{key}' (ignored)", nearest(str(key), TOP_KEYS))


def check_defaults(ctx: Ctx, defaults: Any, path: tuple[Any, ...]) -> None:
    if defaults is None:
        return
    if not isinstance(defaults, dict):
        ctx.add(path, "defaults must be a map")
        return
    for key in defaults:
        if key not in DEFAULTS_KEYS:
            ctx.warn((*path, key), f"unknown defaults key '{key}' (ignored)")
    check_enum(ctx, defaults, "claude_preset", PRESETS, path)
    check_model(ctx, defaults.get("gemini_model"), (*path, "gemini_model"), "gemini")
    check_model(ctx, defaults.get("model"), (*path, "model"), "claude")
    check_model(ctx, defaults.get("claude_model"), (*path, "claude_model"), "claude")
    check_claude_options(ctx, defaults.get("claude_options"), (*path, "claude_options"))


def check_inputs(ctx: Ctx, wf: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    """Our ``inputs:`` declarations: a list of ``{name, description, required, default}``
    (or names), or a map ``name: {...}``."""
    raw = wf.get("inputs")
    if raw is None:
        return
    if not isinstance(raw, (list, dict)):
        ctx.add(path, "inputs must be a list of {name, description, required, default}")
        return
    if isinstance(raw, list):
        for k, item in enumerate(raw):
            ok = isinstance(item, str) or (isinstance(item, dict) and item.get("name"))
            if not ok:
                ctx.add((*path, k), "an input needs a 'name'", "- name: topic")
    ctx.inputs = {str(spec["name"]) for spec in declared_inputs(wf)}


def check_functions(ctx: Ctx, functions: Any, path: tuple[Any, ...]) -> None:
    if functions is None:
        return
    if not isinstance(functions, dict):
        ctx.add(path, "gemini_functions must be a map of name: {description, parameters}")
        return
    for name, spec in functions.items():
        ctx.functions.add(str(name))
        fpath = (*path, name)
        if not isinstance(spec, dict):
            ctx.add(fpath, f"function '{name}' must be a map with description and parameters")
            continue
        for required in ("description", "parameters"):
            if required not in spec:
                ctx.add(fpath, f"function '{name}' is missing '{required}'")
        if "parameters" in spec and not isinstance(spec["parameters"], dict):
            ctx.add((*fpath, "parameters"), "parameters must be a JSON-schema map")


def check_step_keys(ctx: Ctx, step: Mapping[str, Any], kind: str, path: tuple[Any, ...]) -> None:
    allowed = COMMON_STEP_KEYS | STEP_KEYS.get(kind, frozenset())
    for key in step:
        if key in allowed:
            continue
        if key in IGNORED_STEP_KEYS:
            ctx.warn((*path, key), f"'{key}' is ignored by pipeline_ex and by us")
        else:
            ctx.warn(
                (*path, key),
                f"unknown field '{key}' for a {kind} step (ignored)",
                nearest(str(key), allowed),
            )
