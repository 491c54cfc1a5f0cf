"""Applying a workflow's ``defaults`` to its steps (pipeline_ex validates them but forgets to).

Supported keys: ``claude_preset`` (enhanced Claude steps without ``preset``),
``claude_options`` (deep-merged under each Claude step's own options), ``claude_output_format``,
``claude_model``, ``gemini_model``, ``gemini_token_budget`` (merged under ``token_budget``) and
``output_dir`` (read by the executor). Step values always win over defaults.

Also reads the run-input declarations (top-level ``inputs:``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CLAUDE_TYPES = frozenset(
    {
        "claude",
        "claude_smart",
        "claude_session",
        "claude_extract",
        "claude_batch",
        "claude_robust",
    }
)
ENHANCED_TYPES = CLAUDE_TYPES - {"claude"}
GEMINI_TYPES = frozenset({"gemini", "gemini_instructor"})


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested maps are merged, everything else replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _claude_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
    opts = dict(defaults.get("claude_options") or {})
    if defaults.get("claude_output_format") and "output_format" not in opts:
        opts["output_format"] = defaults["claude_output_format"]
    if defaults.get("claude_model") and "model" not in opts:
        opts["model"] = defaults["claude_model"]
    return opts


def apply_to_step(step: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(step)
    kind = str(step.get("type", ""))
    claude_opts = _claude_defaults(defaults)
    if kind in CLAUDE_TYPES and claude_opts:
        out["claude_options"] = deep_merge(claude_opts, step.get("claude_options") or {})
    if kind in ENHANCED_TYPES and not step.get("preset") and defaults.get("claude_preset"):
        out["preset"] = defaults["claude_preset"]
    if kind in GEMINI_TYPES:
        if not step.get("model") and defaults.get("gemini_model"):
            out["model"] = defaults["gemini_model"]
        budget = defaults.get("gemini_token_budget")
        if isinstance(budget, Mapping):
            out["token_budget"] = deep_merge(budget, step.get("token_budget") or {})
    if kind == "parallel_claude" and claude_opts:
        out["parallel_tasks"] = [
            {**task, "claude_options": deep_merge(claude_opts, task.get("claude_options") or {})}
            if isinstance(task, Mapping)
            else task
            for task in step.get("parallel_tasks") or []
        ]
    if kind in ("for_loop", "while_loop") and isinstance(step.get("steps"), list):
        out["steps"] = [
            apply_to_step(s, defaults) if isinstance(s, Mapping) else s for s in step["steps"]
        ]
    return out


def apply_defaults(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """A new workflow dict whose steps carry the defaults (the input is not modified)."""
    out = dict(workflow)
    defaults = workflow.get("defaults")
    if not isinstance(defaults, Mapping) or not defaults:
        return out
    out["steps"] = [
        apply_to_step(s, defaults) if isinstance(s, Mapping) else s
        for s in workflow.get("steps") or []
    ]
    return out


def declared_inputs(workflow: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Top-level ``inputs:`` as a list of ``{name, description, required, default?}``.

    Accepts a list of maps (``- name: x``) or a map ``name: {description, required, default}``.
    """
    raw = workflow.get("inputs")
    specs: list[dict[str, Any]] = []
    if isinstance(raw, Mapping):
        for name, spec in raw.items():
            item = dict(spec) if isinstance(spec, Mapping) else {"default": spec}
            item["name"] = str(name)
            specs.append(item)
    elif isinstance(raw, list):
        for spec in raw:
            if isinstance(spec, Mapping) and spec.get("name"):
                specs.append(dict(spec))
            elif isinstance(spec, str):
                specs.append({"name": spec, "required": True})
    for spec in specs:
        spec.setdefault("description", "")
        spec.setdefault("required", "default" not in spec)
    return specs
