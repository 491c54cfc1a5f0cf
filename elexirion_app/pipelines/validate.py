"""Validation before execution: every problem at once, with file, line, field path and hint.

CONTRACT:
- ``validate_document(doc, *, strict=False) -> list[Problem]`` — errors and warnings
  (``Problem.severity``). ``strict=True`` also refuses what pipeline_ex's own validation
  refuses but we accept (a prompt written as a plain string).
- ``validate_file(path) -> list[Problem]`` — load + validate; load failures become problems.
- ``ensure_valid(doc)`` — raises ``PipelineValidationError`` if any problem is an error, else
  returns the warnings.

Paths in problems look like ``steps[2].prompt[0].step`` (relative to ``workflow:``); lines
come from the loader's line map. Nested inline pipelines are validated with the path prefix
``steps[i].pipeline.``; nested pipeline files are loaded and validated too (their problems
carry their own file), with cycles (A → B → A) and depth capped.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import (
    ConditionError,
    PipelineValidationError,
    Problem,
    TemplateError,
)
from elexirion_app.core.models import CLAUDE_ALIASES, price_map, resolve_model
from elexirion_app.pipelines import conditions, templating
from elexirion_app.pipelines.defaults import declared_inputs
from elexirion_app.pipelines.loader import PipelineDocument, load_file

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


# --- context ----------------------------------------------------------------------------


@dataclass
class StepInfo:
    name: str
    type: str
    path: tuple[Any, ...]
    step: Mapping[str, Any]


@dataclass
class Ctx:
    """What is visible where a step sits (copied for loop bodies and inline pipelines)."""

    doc: PipelineDocument
    strict: bool
    chain: tuple[str, ...]
    problems: list[Problem]
    earlier: dict[str, StepInfo] = field(default_factory=dict)
    later: dict[str, StepInfo] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    global_vars: set[str] = field(default_factory=set)
    iterators: tuple[str, ...] = ()
    in_loop: bool = False
    loop_keys: set[str] = field(default_factory=set)
    output_fields: dict[str, str] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    inputs: set[str] | None = None  # declared run inputs (None: no ``inputs:`` section)

    def child(self, **changes: Any) -> Ctx:
        data = dict(self.__dict__)
        for key in ("earlier", "later", "output_fields"):
            data[key] = dict(data[key])
        data["variables"] = set(data["variables"])
        data["loop_keys"] = set(data["loop_keys"])
        data.update(changes)
        return Ctx(**data)

    def add(
        self, path: tuple[Any, ...], message: str, hint: str = "", severity: str = "error"
    ) -> None:
        self.problems.append(
            Problem(
                message=message,
                path=format_path(path),
                file=self.doc.file,
                line=self.doc.line_of(path),
                hint=hint,
                severity=severity,
            )
        )

    def warn(self, path: tuple[Any, ...], message: str, hint: str = "") -> None:
        self.add(path, message, hint, "warning")


def format_path(path: tuple[Any, ...]) -> str:
    """``("steps", 2, "prompt", 0, "step")`` → ``steps[2].prompt[0].step``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def nearest(name: str, candidates: Any) -> str:
    """A hint naming the closest existing name, if any."""
    names = [str(c) for c in candidates]
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    if names and len(names) <= 12:
        return "known: " + ", ".join(sorted(names))
    return ""


# --- entry points -----------------------------------------------------------------------


def validate_document(
    doc: PipelineDocument, *, strict: bool = False, _chain: tuple[str, ...] = ()
) -> list[Problem]:
    """Every problem of a loaded pipeline (see the module docstring)."""
    problems: list[Problem] = []
    chain = _chain or ((_resolved(doc.file),) if _is_file(doc.file) else ())
    ctx = Ctx(doc=doc, strict=strict, chain=chain, problems=problems)
    _validate_workflow(ctx, doc.workflow, ())
    return problems


def validate_file(path: Path, *, strict: bool = False) -> list[Problem]:
    """Load and validate a file; load failures become problems."""
    try:
        doc = load_file(Path(path))
    except PipelineValidationError as exc:
        return list(exc.problems)
    return validate_document(doc, strict=strict)


def ensure_valid(doc: PipelineDocument, *, strict: bool = False) -> list[Problem]:
    """Raise ``PipelineValidationError`` on any error; return the warnings otherwise."""
    problems = validate_document(doc, strict=strict)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise PipelineValidationError(problems)
    return problems


def errors_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def _is_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def _resolved(name: str) -> str:
    try:
        return str(Path(name).resolve())
    except OSError:  # pragma: no cover
        return name


# --- workflow ---------------------------------------------------------------------------


def _validate_workflow(ctx: Ctx, wf: Mapping[str, Any], prefix: tuple[Any, ...]) -> None:
    name = wf.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        ctx.add(prefix or ("name",), "missing the workflow 'name'", "add: name: my_pipeline")
    elif not isinstance(name, (str, int, float)):
        ctx.add((*prefix, "name"), "the workflow 'name' must be text")
    _check_top_keys(ctx, wf, prefix)
    if prefix == ():
        _check_defaults(ctx, wf.get("defaults"), ("defaults",))
    ctx.global_vars = (
        set(map(str, wf["global_vars"])) if isinstance(wf.get("global_vars"), dict) else set()
    )
    if "global_vars" in wf and not isinstance(wf.get("global_vars"), dict):
        ctx.add((*prefix, "global_vars"), "global_vars must be a map of name: value")
    variables = wf.get("variables")
    if isinstance(variables, dict):
        ctx.variables |= set(map(str, variables))
    elif variables is not None:
        ctx.add((*prefix, "variables"), "variables must be a map of name: value")
    _check_functions(ctx, wf.get("gemini_functions"), (*prefix, "gemini_functions"))
    _check_inputs(ctx, wf, (*prefix, "inputs"))
    steps = wf.get("steps")
    if steps is None:
        ctx.add(prefix or ("steps",), "missing 'steps'", "add a list of steps under steps:")
    elif not isinstance(steps, list):
        ctx.add((*prefix, "steps"), "'steps' must be a list of steps")
    elif not steps:
        ctx.add((*prefix, "steps"), "'steps' is empty", "add at least one step")
    else:
        _validate_steps(ctx, steps, (*prefix, "steps"))


def _check_top_keys(ctx: Ctx, wf: Mapping[str, Any], prefix: tuple[Any, ...]) -> None:
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


def _check_defaults(ctx: Ctx, defaults: Any, path: tuple[Any, ...]) -> None:
    if defaults is None:
        return
    if not isinstance(defaults, dict):
        ctx.add(path, "defaults must be a map")
        return
    for key in defaults:
        if key not in DEFAULTS_KEYS:
            ctx.warn((*path, key), f"unknown defaults key '{key}' (ignored)")
    _check_enum(ctx, defaults, "claude_preset", PRESETS, path)
    _check_model(ctx, defaults.get("gemini_model"), (*path, "gemini_model"), "gemini")
    _check_model(ctx, defaults.get("model"), (*path, "model"), "claude")
    _check_model(ctx, defaults.get("claude_model"), (*path, "claude_model"), "claude")
    _check_claude_options(ctx, defaults.get("claude_options"), (*path, "claude_options"))


def _check_inputs(ctx: Ctx, wf: Mapping[str, Any], path: tuple[Any, ...]) -> None:
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


def _check_functions(ctx: Ctx, functions: Any, path: tuple[Any, ...]) -> None:
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


# --- steps ------------------------------------------------------------------------------


def _validate_steps(ctx: Ctx, steps: list[Any], path: tuple[Any, ...]) -> None:
    """Validate a list of steps; ``ctx`` is updated with what each step makes visible."""
    infos: list[StepInfo | None] = []
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        spath = (*path, i)
        if not isinstance(step, dict):
            ctx.add(spath, f"a step must be a map with name and type, not {_kind(step)}")
            infos.append(None)
            continue
        name = step.get("name")
        if name is None or not str(name).strip():
            ctx.add(spath, "step without a 'name'", "add: name: my_step")
            infos.append(None)
            continue
        name = str(name)
        if name in seen:
            first = ctx.doc.line_of((*path, seen[name]))
            ctx.add((*spath, "name"), f"duplicate step name '{name}' (first on line {first})")
            infos.append(None)
            continue
        seen[name] = i
        infos.append(StepInfo(name, str(step.get("type", "")), spath, step))
    # names visible as "later" (for clear messages about forward references)
    outer_later = dict(ctx.later)
    pending = {info.name: info for info in infos if info is not None}
    for i, step in enumerate(steps):
        info = infos[i]
        if info is not None:
            pending.pop(info.name, None)
        ctx.later = {**outer_later, **pending}
        if isinstance(step, dict):
            _validate_step(ctx, step, (*path, i))
        if info is not None:
            ctx.earlier[info.name] = info
            _record_effects(ctx, info)


def _record_effects(ctx: Ctx, info: StepInfo) -> None:
    """Variables and data_transform output fields a finished step makes visible."""
    step = info.step
    if info.type == "set_variable":
        variables = step.get("variables")
        if isinstance(variables, dict):
            ctx.variables |= set(map(str, variables))
        if "variable" in step:
            ctx.variables.add(str(step["variable"]))
    if info.type == "data_transform" and step.get("output_field"):
        ctx.output_fields[str(step["output_field"])] = info.name


def _validate_step(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    kind = step.get("type")
    if kind is None:
        ctx.add(path, "step without a 'type'", "one of: " + ", ".join(STEP_TYPES))
        return
    kind = str(kind)
    if kind in TEST_STEP_TYPES:
        ctx.warn((*path, "type"), f"'{kind}' is a pipeline_ex test-only step type (echoes 'value')")
    elif kind not in STEP_TYPES:
        ctx.add((*path, "type"), f"unknown step type '{kind}'", nearest(kind, STEP_TYPES))
        return
    _check_step_keys(ctx, step, kind, path)
    if "condition" in step and kind != "while_loop":  # a while condition sees the body
        _check_condition(ctx, step["condition"], (*path, "condition"))
    _check_output_file(ctx, step.get("output_to_file"), (*path, "output_to_file"))
    _check_prompt_required(ctx, step, kind, path)
    if isinstance(step.get("prompt"), (list, str)):
        _check_prompt(ctx, step["prompt"], (*path, "prompt"))
    _check_templates(ctx, step, kind, path)
    checker = _TYPE_CHECKS.get(kind)
    if checker is not None:
        checker(ctx, step, path)


def _check_step_keys(ctx: Ctx, step: Mapping[str, Any], kind: str, path: tuple[Any, ...]) -> None:
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


def _check_prompt_required(
    ctx: Ctx, step: Mapping[str, Any], kind: str, path: tuple[Any, ...]
) -> None:
    if kind in NO_PROMPT_TYPES or kind in TEST_STEP_TYPES:
        return
    if kind == "claude_batch" and step.get("tasks"):
        return
    prompt = step.get("prompt")
    if prompt is None:
        ctx.add(
            path, f"a {kind} step needs a 'prompt' list", "prompt: [{type: static, content: ...}]"
        )
    elif isinstance(prompt, list) and not prompt:
        ctx.add((*path, "prompt"), "the prompt is empty")
    elif not isinstance(prompt, (list, str)):
        ctx.add((*path, "prompt"), f"the prompt must be a list of parts, not {_kind(prompt)}")


# --- prompts ----------------------------------------------------------------------------


def _check_prompt(ctx: Ctx, prompt: Any, path: tuple[Any, ...]) -> None:
    if isinstance(prompt, str):
        message = "the prompt is a plain string; pipeline_ex's validation refuses this"
        hint = "write prompt: [{type: static, content: ...}]"
        if ctx.strict:
            ctx.add(path, message, hint)
        else:
            ctx.warn(path, message + " (we use it as one static part)", hint)
        return
    for j, part in enumerate(prompt):
        _check_prompt_part(ctx, part, (*path, j))


def _check_prompt_part(ctx: Ctx, part: Any, path: tuple[Any, ...]) -> None:
    if isinstance(part, str):
        ctx.warn(path, "a prompt part is a plain string (used as static content)")
        return
    if not isinstance(part, dict):
        ctx.add(path, f"a prompt part must be a map with 'type', not {_kind(part)}")
        return
    ptype = part.get("type")
    if ptype not in PROMPT_PART_FIELDS:
        ctx.add(
            (*path, "type"),
            f"unknown prompt part type {ptype!r}",
            nearest(str(ptype), PROMPT_PART_FIELDS),
        )
        return
    required, optional = PROMPT_PART_FIELDS[ptype]
    for key in required:
        if part.get(key) is None:
            ctx.add(path, f"a {ptype} prompt part needs '{key}'")
    for key in part:
        if key != "type" and key not in required and key not in optional:
            ctx.warn((*path, key), f"unknown field '{key}' in a {ptype} prompt part (ignored)")
    if ptype == "previous_response" and part.get("step") is not None:
        _check_step_ref(ctx, str(part["step"]), (*path, "step"), "previous_response")
    if ptype == "file" and isinstance(part.get("path"), str):
        _check_relative(ctx, part["path"], (*path, "path"), severity="warning")


def _check_step_ref(ctx: Ctx, name: str, path: tuple[Any, ...], what: str) -> bool:
    """An error unless ``name`` is an earlier step; True when it is."""
    if name in ctx.earlier:
        return True
    if name in ctx.later:
        later = ctx.later[name]
        ctx.add(
            path,
            f"{what} refers to step '{name}', which runs later (line "
            f"{ctx.doc.line_of(later.path)})",
            "a step can only use the results of steps before it",
        )
    else:
        ctx.add(
            path,
            f"{what} refers to a step '{name}' that does not exist",
            nearest(name, ctx.earlier),
        )
    return False


# --- templates --------------------------------------------------------------------------

# keys whose values are validated elsewhere with their own scope
_DEFERRED = {
    "for_loop": frozenset({"steps", "break_condition", "continue_condition", "data_source"}),
    "while_loop": frozenset({"steps", "condition"}),
    "pipeline": frozenset({"pipeline"}),
    "data_transform": frozenset({"input_source"}),
}


def _strings(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string inside ``value`` with its path (iterative)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, path)]
    while stack:
        cur, cpath = stack.pop()
        if isinstance(cur, str):
            yield cpath, cur
        elif isinstance(cur, dict):
            stack.extend((v, (*cpath, k)) for k, v in reversed(list(cur.items())))
        elif isinstance(cur, list):
            stack.extend((v, (*cpath, i)) for i, v in reversed(list(enumerate(cur))))


def _check_templates(ctx: Ctx, step: Mapping[str, Any], kind: str, path: tuple[Any, ...]) -> None:
    deferred = _DEFERRED.get(kind, frozenset())
    for key, value in step.items():
        if key in deferred or key == "condition":
            continue
        for spath, text in _strings(value, (*path, key)):
            if "{{" in text:
                check_template_text(ctx, text, spath)


def check_template_text(ctx: Ctx, text: str, path: tuple[Any, ...]) -> None:
    """Syntax and every reference of one templated string."""
    try:
        refs = templating.references(text)
    except TemplateError as exc:
        ctx.add(path, str(exc))
        return
    for ref in refs:
        _check_reference(ctx, ref, path)


def _check_reference(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    if ref.root == "steps":
        _check_steps_ref(ctx, ref, path)
    elif ref.root == "global_vars":
        if ref.path and ref.path[0] not in ctx.global_vars:
            ctx.warn(
                path,
                f"{ref.raw}: '{ref.path[0]}' is not in global_vars (stays verbatim unless a "
                "parent pipeline provides it)",
                nearest(ref.path[0], ctx.global_vars),
            )
    elif ref.root == "inputs":
        if ctx.inputs is not None and ref.path and ref.path[0] not in ctx.inputs:
            ctx.warn(
                path,
                f"{ref.raw}: input '{ref.path[0]}' is not declared in inputs:",
                nearest(ref.path[0], ctx.inputs),
            )
    elif ref.root == "state":
        if ref.path and ref.path[0] not in ctx.variables:
            ctx.warn(
                path,
                f"{ref.raw}: variable '{ref.path[0]}' is not set by an earlier set_variable "
                "or the workflow's variables (renders empty)",
                nearest(ref.path[0], ctx.variables),
            )
    elif ref.root == "loop":
        _check_loop_ref(ctx, ref, path)
    elif ref.root == "bare":
        _check_bare_ref(ctx, ref, path)


def _check_steps_ref(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    if not ref.path:
        ctx.add(path, f"{ref.raw}: name a step, e.g. steps.my_step.text")
        return
    name = ref.path[0]
    if name in ctx.output_fields and name not in ctx.earlier and name not in ctx.later:
        owner = ctx.output_fields[name]
        ctx.warn(
            path,
            f"{ref.raw}: '{name}' is the output_field of step '{owner}', not a step "
            "(stays verbatim)",
            f"write {{{{steps.{owner}.{name}}}}}",
        )
        return
    if not _check_step_ref(ctx, name, path, ref.raw):
        return
    info = ctx.earlier[name]
    if info.type in LLM_TYPES and len(ref.path) > 1 and ref.path[1] == "result":
        ctx.add(
            path,
            f"{ref.raw}: a {info.type} step's result has no 'result' field; pipeline_ex puts "
            "the whole result map here and fails (a map interpolated into a string)",
            f"use {{{{steps.{name}.text}}}} for the answer text",
        )


def _check_loop_ref(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    if not ctx.in_loop:
        ctx.add(path, f"{ref.raw}: 'loop' is only defined inside for_loop/while_loop steps")
        return
    if not ref.path:
        return
    head = ref.path[0]
    if head in LOOP_CONTEXT_KEYS or head in ctx.iterators or head in ctx.loop_keys:
        return
    ctx.add(
        path,
        f"{ref.raw}: the loop has no '{head}'",
        nearest(head, [*ctx.iterators, *ctx.loop_keys, *LOOP_CONTEXT_KEYS]),
    )


def _check_bare_ref(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    head = ref.path[0]
    if head in ctx.variables or head in ctx.global_vars or head in ctx.iterators:
        return
    if ctx.inputs is not None and head in ctx.inputs:
        return
    ctx.warn(
        path,
        f"{ref.raw}: '{head}' is not a variable, global_var or loop item; it will be read "
        f"from run inputs (--input {head}=...)",
        _known_hint(ctx, head) or "renders empty when no such input is given",
    )


def _known_hint(ctx: Ctx, name: str) -> str:
    """A 'did you mean' over every name a template or condition may use here."""
    names = [*ctx.variables, *ctx.global_vars, *ctx.iterators, *(ctx.inputs or ()), *ctx.earlier]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else ""


# --- conditions -------------------------------------------------------------------------


def _check_condition(
    ctx: Ctx, condition: Any, path: tuple[Any, ...], *, item_relative: bool = False
) -> None:
    """Syntax, and (unless ``item_relative``) the steps/variables a condition reads."""
    try:
        parts = conditions.paths(condition)
    except ConditionError as exc:
        ctx.add(path, f"bad condition: {exc}")
        return
    if item_relative:
        return
    for parts_ in parts:
        _check_condition_path(ctx, tuple(str(p) for p in parts_), path)


def _check_condition_path(ctx: Ctx, parts: tuple[str, ...], path: tuple[Any, ...]) -> None:
    root = parts[0]
    raw = ".".join(parts)
    if root == "steps":
        if len(parts) > 1:
            _check_step_ref(ctx, parts[1], path, f"condition '{raw}'")
        return
    if root == "loop":
        _check_loop_ref(ctx, templating.Reference("loop", parts[1:], raw), path)
        return
    if root in ("inputs", "global_vars", "state") or root in templating.BUILTIN_NAMES:
        return
    if root in ctx.earlier or root in ctx.variables or root in ctx.iterators:
        return
    if root in ctx.global_vars or (ctx.inputs is not None and root in ctx.inputs):
        return
    if root in ctx.later:
        _check_step_ref(ctx, root, path, f"condition '{raw}'")
        return
    if len(parts) > 1:
        ctx.add(
            path,
            f"condition '{raw}': '{root}' is not an earlier step or a variable",
            nearest(root, [*ctx.earlier, *ctx.variables]),
        )
    else:
        ctx.warn(
            path,
            f"condition '{raw}': '{root}' is not a step or variable; it will be read from "
            f"run inputs (--input {root}=...)",
            _known_hint(ctx, root),
        )


# --- options and models -----------------------------------------------------------------


def _check_model(ctx: Ctx, name: Any, path: tuple[Any, ...], provider: str) -> None:
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


def _check_claude_options(ctx: Ctx, options: Any, path: tuple[Any, ...]) -> None:
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
    _check_model(ctx, options.get("model"), (*path, "model"), "claude")
    _check_model(ctx, options.get("fallback_model"), (*path, "fallback_model"), "claude")
    _check_enum(ctx, options, "output_format", OUTPUT_FORMATS, path)
    turns = options.get("max_turns")
    if turns is not None and (not isinstance(turns, int) or isinstance(turns, bool) or turns < 1):
        ctx.add((*path, "max_turns"), "max_turns must be a positive whole number")
    for tools_key in ("allowed_tools", "disallowed_tools"):
        tools = options.get(tools_key)
        if tools is not None and not isinstance(tools, list):
            ctx.add((*path, tools_key), f"{tools_key} must be a list of tool names")
    if isinstance(options.get("retry_config"), dict):
        _check_enum(
            ctx, options["retry_config"], "backoff_strategy", BACKOFF, (*path, "retry_config")
        )


def _check_enum(
    ctx: Ctx,
    holder: Mapping[str, Any],
    key: str,
    allowed: tuple[str, ...],
    path: tuple[Any, ...],
    *,
    severity: str = "error",
) -> None:
    value = holder.get(key)
    if value is None or (isinstance(value, str) and "{{" in value):
        return
    if value not in allowed:
        ctx.add(
            (*path, key),
            f"{key} must be one of {', '.join(allowed)}, not {value!r}",
            nearest(str(value), allowed),
            severity,
        )


# --- per-type checks --------------------------------------------------------------------


def _check_llm(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    kind = str(step.get("type"))
    if kind in CLAUDE_TYPES:
        _check_claude_options(ctx, step.get("claude_options"), (*path, "claude_options"))
        _check_model(ctx, step.get("model"), (*path, "model"), "claude")
    if kind in GEMINI_TYPES:
        _check_model(ctx, step.get("model"), (*path, "model"), "gemini")
        budget = step.get("token_budget")
        if budget is not None and not isinstance(budget, dict):
            ctx.add((*path, "token_budget"), "token_budget must be a map")
        functions = step.get("functions")
        if functions is not None:
            _check_function_refs(ctx, functions, (*path, "functions"))
    if kind in ENHANCED_TYPES:
        _check_enhanced(ctx, step, path)


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
    _check_enum(ctx, step, "preset", PRESETS, path)
    retry = step.get("retry_config")
    if isinstance(retry, dict):
        rpath = (*path, "retry_config")
        _check_enum(ctx, retry, "backoff_strategy", BACKOFF, rpath)
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
    _check_enum(ctx, config, "format", EXTRACTION_FORMATS, path)
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
    if tasks is None or _templated(tasks):
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
            _check_prompt(ctx, task["prompt"], (*tpath, "prompt"))


def _check_parallel(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    tasks = step.get("parallel_tasks")
    tpath = (*path, "parallel_tasks")
    if _templated(tasks):
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
            _check_prompt(ctx, prompt, (*kpath, "prompt"))
        _check_claude_options(ctx, task.get("claude_options"), (*kpath, "claude_options"))
        _check_output_file(ctx, task.get("output_to_file"), (*kpath, "output_to_file"))


def _check_set_variable(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    variables = step.get("variables")
    if variables is None and "variable" in step:
        ctx.warn(
            (*path, "variable"),
            "'variable'/'value' is not pipeline_ex's set_variable form",
            f"write variables: {{{step.get('variable')}: ...}}",
        )
    elif not _templated(variables) and (not isinstance(variables, dict) or not variables):
        ctx.add(path, "set_variable needs a non-empty 'variables' map", "variables: {name: value}")
    _check_enum(ctx, step, "scope", SET_SCOPES, path)


def _loop_ctx(ctx: Ctx, iterator: str | None) -> Ctx:
    iterators = (iterator, *ctx.iterators) if iterator else ctx.iterators
    return ctx.child(iterators=iterators, in_loop=True)


def _check_loop_body(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    body = step.get("steps")
    if body is None:
        ctx.add(path, f"a {step.get('type')} needs 'steps' to repeat")
    elif not isinstance(body, list) or not body:
        ctx.add((*path, "steps"), "the loop's 'steps' must be a non-empty list")
    else:
        # every set_variable of the body is visible to the body (later iterations see it)
        for inner in body:
            is_set = isinstance(inner, dict) and inner.get("type") == "set_variable"
            if is_set and isinstance(inner.get("variables"), dict):
                ctx.variables |= set(map(str, inner["variables"]))
                ctx.loop_keys |= set(map(str, inner["variables"]))  # scope: loop
        _validate_steps(ctx, body, (*path, "steps"))


def _check_for_loop(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    iterator = step.get("iterator")
    if iterator is None:
        ctx.add(path, "a for_loop needs an 'iterator' name", "iterator: item")
    elif not isinstance(iterator, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", iterator):
        ctx.add((*path, "iterator"), "the iterator must be a simple name like item")
        iterator = None
    source = step.get("data_source")
    if source is None:
        ctx.add(path, "a for_loop needs a 'data_source'", "data_source: previous_response:step")
    else:
        _check_data_source(ctx, source, (*path, "data_source"), strict_missing=True)
    inner = _loop_ctx(ctx, iterator)
    for key in ("break_condition", "continue_condition"):
        if key in step:
            _check_condition(inner, step[key], (*path, key))
    _check_loop_body(inner, step, path)


def _check_while_loop(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    inner = _loop_ctx(ctx, None)
    if step.get("condition") is None:
        ctx.add(path, "a while_loop needs a 'condition'")
    maxi = step.get("max_iterations")
    if maxi is not None:
        if not isinstance(maxi, int) or isinstance(maxi, bool) or maxi < 1:
            ctx.add((*path, "max_iterations"), "max_iterations must be a positive whole number")
        elif maxi > MAX_WHILE_ITERATIONS:
            ctx.warn(
                (*path, "max_iterations"), f"max_iterations is capped at {MAX_WHILE_ITERATIONS}"
            )
    _check_loop_body(inner, step, path)
    if step.get("condition") is not None:
        _check_condition(inner, step["condition"], (*path, "condition"))


def _split_source(text: str) -> tuple[bool, str, str]:
    """``previous_response:step[:a.b|.a.b]`` → (prefixed, step, path)."""
    prefixed = text.startswith("previous_response")
    rest = text[len("previous_response") :].lstrip(":.") if prefixed else text
    m = re.match(r"([A-Za-z0-9_\-]+)[:.]?(.*)$", rest)
    if not m:
        return prefixed, "", ""
    return prefixed, m.group(1), m.group(2)


def _check_data_source(
    ctx: Ctx, source: Any, path: tuple[Any, ...], *, strict_missing: bool
) -> None:
    """A for_loop ``data_source`` / data_transform ``input_source``."""
    if not isinstance(source, str):
        if not isinstance(source, (list, dict)):
            ctx.add(path, f"the data source must be text or a list, not {_kind(source)}")
        return
    if "{{" in source:
        check_template_text(ctx, source, path)
        return
    if source.startswith("context:"):
        return
    prefixed, name, field_path = _split_source(source.strip())
    if not name:
        if not prefixed or not ctx.earlier:
            ctx.add(path, f"the data source {source!r} names nothing")
        return
    if name in ctx.earlier:
        _check_source_field(ctx, ctx.earlier[name], field_path, path)
        return
    if name in ctx.output_fields:
        owner = ctx.output_fields[name]
        ctx.warn(
            path,
            f"'{name}' is the output_field of step '{owner}', not a step",
            f"write previous_response:{owner}:{name}{'.' + field_path if field_path else ''}",
        )
        return
    if not prefixed and (name in ctx.variables or name in ctx.iterators or name in ctx.global_vars):
        return
    if name in ctx.later or prefixed:
        if strict_missing or name in ctx.later:
            _check_step_ref(ctx, name, path, f"data source {source!r}")
        else:
            ctx.warn(
                path,
                f"data source {source!r}: '{name}' is not an earlier step (fails at run time)",
                nearest(name, ctx.earlier),
            )
        return
    ctx.warn(
        path,
        f"data source {source!r}: '{name}' is not an earlier step or variable; it will be "
        f"read from run inputs (--input {name}=...)",
        nearest(name, [*ctx.earlier, *ctx.variables]),
    )


def _check_source_field(ctx: Ctx, info: StepInfo, field_path: str, path: tuple[Any, ...]) -> None:
    if not field_path or info.type != "set_variable":
        return
    head = re.split(r"[.:]", field_path, maxsplit=1)[0]
    if head in SET_VARIABLE_RESULT:
        return
    key = path[-1] if path else "data_source"
    ctx.add(
        path,
        f"step '{info.name}' is a set_variable step: its result has "
        f"{', '.join(SET_VARIABLE_RESULT)}, no '{head}' (nothing to read there)",
        f"to read the variable write {key}: {head}",
    )


def _check_data_transform(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    source = step.get("input_source")
    if source is None:
        ctx.add(path, "a data_transform needs an 'input_source'")
    else:
        _check_data_source(ctx, source, (*path, "input_source"), strict_missing=False)
    ops = step.get("operations")
    opath = (*path, "operations")
    if ops is None or ops == []:
        ctx.warn(opath if ops is not None else path, "no operations: the input passes unchanged")
        return
    if _templated(ops):
        return
    if not isinstance(ops, list):
        ctx.add(opath, "operations must be a list")
        return
    for k, op in enumerate(ops):
        _check_operation(ctx, op, (*opath, k))


def _check_operation(ctx: Ctx, op: Any, path: tuple[Any, ...]) -> None:
    if not isinstance(op, dict):
        ctx.add(path, "an operation must be a map with 'operation'")
        return
    name = op.get("operation")
    if name not in TRANSFORM_OPS:
        ctx.add(
            (*path, "operation"),
            f"unknown data_transform operation {name!r}",
            nearest(str(name), TRANSFORM_OPS),
        )
        return
    for key in TRANSFORM_OPS[name]:
        if op.get(key) is None:
            ctx.add(path, f"a {name} operation needs '{key}'")
    if name == "filter" and op.get("condition") is not None:
        _check_condition(ctx, op["condition"], (*path, "condition"), item_relative=True)
    if name == "aggregate":
        _check_enum(ctx, op, "function", AGGREGATE_FUNCTIONS, path)
    if name == "sort":
        _check_enum(ctx, op, "order", ("asc", "desc"), path)
    if name == "map" and "mapping" not in op and "expression" not in op:
        ctx.add(path, "a map operation needs 'mapping' or 'expression'")
    if name == "map" and "expression" in op:
        _check_enum(ctx, op, "expression", ("uppercase", "lowercase"), path)
    if name == "join" and isinstance(op.get("right_source"), str):
        _check_data_source(ctx, op["right_source"], (*path, "right_source"), strict_missing=False)


def _check_file_ops(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    op = step.get("operation")
    if op not in FILE_OPS:
        ctx.add(
            (*path, "operation") if op is not None else path,
            f"unknown file_ops operation {op!r}"
            if op is not None
            else "file_ops needs an 'operation'",
            nearest(str(op), FILE_OPS) if op is not None else "one of: " + ", ".join(FILE_OPS),
        )
    else:
        for key in FILE_OPS[op]:
            if step.get(key) is None:
                ctx.add(path, f"file_ops {op} needs '{key}'")
        if op == "convert":
            _check_enum(ctx, step, "format", CONVERT_FORMATS, path)
    for key in ("source", "destination", "path"):
        if isinstance(step.get(key), str):
            _check_relative(ctx, step[key], (*path, key))
    files = step.get("files")
    if _templated(files):
        return
    if isinstance(files, list):
        for k, item in enumerate(files):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                _check_relative(ctx, item["path"], (*path, "files", k, "path"))
            elif not isinstance(item, (dict, str)):
                ctx.add((*path, "files", k), "a files entry must be a map with 'path'")
    elif files is not None:
        ctx.add((*path, "files"), "files must be a list")


def _check_relative(ctx: Ctx, raw: str, path: tuple[Any, ...], *, severity: str = "error") -> None:
    """Workspace paths must be relative and stay inside (templated parts are skipped)."""
    literal = re.sub(r"\{\{.*?\}\}", "x", raw)
    parts = re.split(r"[\\/]+", literal)
    if literal.startswith("/"):
        # Allowed when it resolves inside the run's workspace (checked when the step runs):
        # pipeline_ex users pass CODE_FILE=/abs/path/in/workspace.
        ctx.add(
            path,
            f"absolute path {raw!r} must lie inside the run's workspace",
            "prefer a path relative to the workspace",
            "warning",
        )
    elif literal.startswith(("\\", "~")) or re.match(r"^[A-Za-z]:[\\/]", literal):
        ctx.add(
            path,
            f"path {raw!r} is outside the workspace",
            "use a path relative to the workspace",
            severity,
        )
    elif ".." in parts:
        ctx.add(
            path,
            f"path {raw!r} leaves the workspace ('..')",
            "use a path inside the workspace",
            severity,
        )


def _check_output_file(ctx: Ctx, value: Any, path: tuple[Any, ...]) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        ctx.add(path, "output_to_file must be a file name")
        return
    _check_relative(ctx, value, path)


# --- nested pipelines -------------------------------------------------------------------


def _check_pipeline(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    has_file, has_inline = "pipeline_file" in step, "pipeline" in step
    if has_file == has_inline:
        ctx.add(path, "a pipeline step needs exactly one of 'pipeline_file' or 'pipeline'")
        return
    if has_inline:
        inline = step["pipeline"]
        ipath = (*path, "pipeline")
        if not isinstance(inline, dict):
            ctx.add(ipath, "an inline pipeline must be a map with name and steps")
            return
        if isinstance(inline.get("workflow"), dict):
            inline, ipath = inline["workflow"], (*ipath, "workflow")
        sub = Ctx(doc=ctx.doc, strict=ctx.strict, chain=ctx.chain, problems=ctx.problems)
        _validate_workflow(sub, inline, ipath)
    else:
        _check_pipeline_file(ctx, step["pipeline_file"], (*path, "pipeline_file"))
    outputs = step.get("outputs")
    if outputs is not None and not _templated(outputs) and not isinstance(outputs, list):
        ctx.add((*path, "outputs"), "outputs must be a list of step names or {path, as}")
    elif isinstance(outputs, list):
        for k, item in enumerate(outputs):
            if isinstance(item, dict) and ("path" not in item or "as" not in item):
                ctx.add((*path, "outputs", k), "an output map needs 'path' and 'as'")
            elif not isinstance(item, (str, dict)):
                ctx.add((*path, "outputs", k), "an output is a step name or {path, as}")


def _check_pipeline_file(ctx: Ctx, raw: Any, path: tuple[Any, ...]) -> None:
    if not isinstance(raw, str) or not raw.strip():
        ctx.add(path, "pipeline_file must be a file path")
        return
    if "{{" in raw:
        check_template_text(ctx, raw, path)
        return
    before = len(ctx.problems)
    _check_relative(ctx, raw, path)
    if len(ctx.problems) > before:
        return
    resolved = _resolved(str(ctx.doc.base_dir / raw))
    if resolved in ctx.chain:
        cycle = " → ".join(Path(p).name for p in (*ctx.chain, resolved))
        ctx.add(path, f"nested pipelines form a cycle: {cycle}", "remove one of the includes")
        return
    if len(ctx.chain) >= MAX_NESTED_DEPTH:
        ctx.add(path, f"pipelines nested deeper than {MAX_NESTED_DEPTH} levels")
        return
    if not Path(resolved).is_file():
        ctx.add(path, f"pipeline file {raw!r} not found (relative to {ctx.doc.base_dir})")
        return
    try:
        nested = load_file(Path(resolved))
    except PipelineValidationError as exc:
        ctx.add(path, f"pipeline file {raw!r} cannot be loaded")
        ctx.problems.extend(exc.problems)
        return
    ctx.problems.extend(validate_document(nested, strict=ctx.strict, _chain=(*ctx.chain, resolved)))


_TYPE_CHECKS = {
    **{kind: _check_llm for kind in CLAUDE_TYPES | GEMINI_TYPES},
    "parallel_claude": _check_parallel,
    "set_variable": _check_set_variable,
    "for_loop": _check_for_loop,
    "while_loop": _check_while_loop,
    "data_transform": _check_data_transform,
    "file_ops": _check_file_ops,
    "pipeline": _check_pipeline,
}


def _templated(value: Any) -> bool:
    """A value given as a ``{{ }}`` template (its type is only known at run time)."""
    return isinstance(value, str) and "{{" in value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list, str, bool, int, float)):
        return {dict: "a map", list: "a list", str: "text", bool: "a boolean"}.get(
            type(value), "a number"
        )
    return type(value).__name__
