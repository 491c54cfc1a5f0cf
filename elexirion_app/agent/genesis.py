"""Genesis: "create a pipeline that ..." -> pipeline YAML that validates.

CONTRACT:
- ``await generate_pipeline(request, provider, *, max_tries=3, name=None) -> GenesisResult``.
  A live provider is prompted with a compact format reference and one example; the YAML is
  taken from the answer's fenced block, loaded with the project's safe loader and checked by
  the validator. While it has errors (and tries remain) the formatted problems
  (``FILE:LINE: path: message (hint)``) go back to the model with a request for the whole
  corrected file. The result says whether the last YAML is valid and, if not, why
  (``problems``). A provider error ends the loop early (a problem says so); it never raises
  for model output.
- On the offline model (``provider.offline``) no model is called: ``offline_pipeline`` builds
  a deterministic, valid pipeline from the request (optional file listing, then analyse/plan
  -> draft -> review Claude steps chained with ``previous_response``).
- Nothing generated is ever executed or evaluated here; the YAML is only parsed with
  ``yaml.safe_load`` semantics. Running it is the caller's decision.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from elexirion_app.core.errors import (
    ElexirionError,
    InputError,
    PipelineValidationError,
    Problem,
)
from elexirion_app.core.types import ChatMessage, LLMRequest, StreamEvent, Usage
from elexirion_app.pipelines.loader import load_text
from elexirion_app.pipelines.validate import validate_document
from elexirion_app.providers.base import Provider, complete
from elexirion_app.providers.registry import bound_provider

log = logging.getLogger(__name__)

GENERATED_FILE = "generated.yaml"
MAX_REQUEST_CHARS = 4000
MAX_NAME_CHARS = 40
MAX_PROBLEMS_SENT = 20


@dataclass(frozen=True)
class GenesisResult:
    """The generated pipeline. ``problems`` holds the errors of an invalid result (and the
    warnings of a valid one); ``attempts`` counts model answers (1 for the offline builder)."""

    yaml_text: str
    valid: bool
    problems: list[Problem] = field(default_factory=list)
    attempts: int = 0
    name: str = ""
    offline: bool = False
    usage: Usage = Usage()
    cost: Decimal = Decimal("0")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def problem_text(self) -> str:
        """The problems as ``FILE:LINE: path: message (hint)`` lines."""
        return "\n".join(p.format() for p in self.problems)


# --- checking ------------------------------------------------------------------------------


def extract_yaml(text: str) -> str:
    """The YAML of a model answer: the first fenced block (fences at line starts) containing
    ``workflow:``, else the first fenced block, else the text itself from ``workflow:`` on."""
    blocks = re.findall(
        r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", text, re.DOTALL | re.MULTILINE
    )
    for _lang, body in blocks:
        if re.search(r"^\s*workflow\s*:", body, re.MULTILINE):
            return body.strip("\n") + "\n"
    if blocks:
        return blocks[0][1].strip("\n") + "\n"
    match = re.search(r"^workflow\s*:", text, re.MULTILINE)
    body = text[match.start() :] if match else text
    return body.strip("\n") + "\n"


def check_yaml(
    yaml_text: str,
    filename: str = GENERATED_FILE,
    *,
    base_dir: Path | None = None,
    expected_name: str | None = None,
) -> tuple[list[Problem], str]:
    """Load and validate pipeline YAML: (problems, workflow name).

    Nested ``pipeline_file`` references resolve against ``base_dir`` (the folder the pipeline
    will live in); without one, against an empty temporary folder, so generated text can never
    make the validator read the server's own files. ``expected_name`` adds an error when the
    workflow is named otherwise.
    """
    if base_dir is None:
        with tempfile.TemporaryDirectory(prefix="genesis-") as empty:
            return check_yaml(
                yaml_text, filename, base_dir=Path(empty), expected_name=expected_name
            )
    try:
        doc = load_text(yaml_text, filename=filename, base_dir=base_dir)
    except PipelineValidationError as exc:
        return list(exc.problems), ""
    problems = validate_document(doc)
    raw = doc.workflow.get("name")
    name = str(raw) if isinstance(raw, str | int) else ""
    if expected_name and name and name != expected_name:
        problems.append(
            Problem(
                message=f"the workflow is named '{name}', not '{expected_name}'",
                path="name",
                file=filename,
                line=doc.line_of(("name",)),
                hint=f"name: {expected_name}",
            )
        )
    return problems, name


def _has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


# --- the offline builder ---------------------------------------------------------------------

_LEAD = re.compile(
    r"^\s*(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?"
    r"(?:create|generate|make|build|write|design|draft|compose|set\s+up|give)\s+(?:me\s+)?"
    r"(?:a|an|new|another|one|some)?\s*(?:new\s+)?(?:[\w-]+\s+){0,2}?"
    r"(?:pipeline|workflow)s?\s*(?:that|which|to|for|who|so\s+that|:|-)?\s*",
    re.IGNORECASE,
)
_NAME_STOP = frozenset(
    re.findall(
        r"\w+",
        """a an the and or of to in on for with from into that which this these those my our
        your it its every each all some any then also please me us is are be""",
    )
)
_FILE_HINT = re.compile(
    r"\b(?:files?|folders?|director(?:y|ies)|workspace|code|codebase|repo|repository|"
    r"project|source|changelog|readme|markdown|logs?)\b|\w/\w|\.\w{1,4}\b",
    re.IGNORECASE,
)


def task_of(request: str) -> str:
    """The task a request describes, without "create a pipeline that" and template braces."""
    text = " ".join(request.split())
    task = _LEAD.sub("", text, count=1).strip() or text
    task = task.replace("{{", "{ {").replace("}}", "} }").replace("{%", "{ %")
    return task[:1].upper() + task[1:] if task else "Do the requested task"


def slug_name(request: str) -> str:
    """A snake_case pipeline name from the request's first meaningful words."""
    words = [w for w in re.findall(r"[a-z0-9]+", task_of(request).lower()) if w not in _NAME_STOP]
    name = ""
    for word in words[:5]:
        candidate = f"{name}_{word}" if name else word
        if len(candidate) > MAX_NAME_CHARS:
            break
        name = candidate
    if not name or not name[0].isalpha():
        name = f"pipeline_{name}" if name else "generated_pipeline"
    return name[:MAX_NAME_CHARS].rstrip("_")


def offline_workflow(request: str, name: str | None = None) -> dict[str, Any]:
    """The deterministic pipeline (as data) the offline builder writes for ``request``."""
    task = task_of(request)
    pipeline_name = name or slug_name(request)
    uses_files = bool(_FILE_HINT.search(task))
    inputs: list[dict[str, Any]] = [
        {
            "name": "task",
            "description": "What the pipeline should do",
            "required": False,
            "default": task,
        }
    ]
    steps: list[dict[str, Any]] = []
    analyse_prompt: list[dict[str, Any]] = [
        {
            "type": "static",
            "content": (
                "Task: {{inputs.task}}\n"
                "Analyse the task and write a short plan: what information is needed, "
                "the steps to take, and what the final result should look like."
            ),
        }
    ]
    if uses_files:
        inputs.append(
            {
                "name": "target",
                "description": "Folder of the workspace to work on",
                "required": False,
                "default": ".",
            }
        )
        steps.append(
            {
                "name": "list_files",
                "type": "file_ops",
                "operation": "list",
                "path": "{{inputs.target}}",
                "pattern": "**/*",
            }
        )
        analyse_prompt += [
            {"type": "static", "content": "Files in the workspace folder {{inputs.target}}:"},
            {"type": "previous_response", "step": "list_files", "extract": "files"},
        ]
    analyse: dict[str, Any] = {
        "name": "analyse",
        "type": "claude",
        "claude_options": {"model": "sonnet", "max_turns": 3 if uses_files else 1},
        "prompt": analyse_prompt,
    }
    if uses_files:
        analyse["claude_options"]["allowed_tools"] = ["Read", "Glob", "Grep"]
    steps += [
        analyse,
        {
            "name": "draft",
            "type": "claude",
            "claude_options": {"model": "sonnet", "max_turns": 1},
            "prompt": [
                {
                    "type": "static",
                    "content": "Carry out this task: {{inputs.task}}\nFollow this plan:",
                },
                {"type": "previous_response", "step": "analyse"},
            ],
        },
        {
            "name": "review",
            "type": "claude",
            "claude_options": {"model": "sonnet", "max_turns": 1},
            "prompt": [
                {
                    "type": "static",
                    "content": (
                        "Review the draft below for correctness, completeness and clarity "
                        "against the task ({{inputs.task}}). Return the improved final "
                        "version only."
                    ),
                },
                {"type": "previous_response", "step": "draft"},
            ],
            "output_to_file": f"{pipeline_name}_result.json",
        },
    ]
    description = task if len(task) <= 200 else task[:199].rsplit(" ", 1)[0] + "…"
    return {
        "workflow": {
            "name": pipeline_name,
            "description": description,
            "version": "1.0",
            "inputs": inputs,
            "steps": steps,
        }
    }


class _BlockDumper(yaml.SafeDumper):
    """Safe dumper writing multi-line strings as ``|`` blocks (readable prompts)."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_presenter)


def offline_pipeline(request: str, name: str | None = None) -> str:
    """``offline_workflow`` as YAML text."""
    data = offline_workflow(request, name)
    text = yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)
    return str(text)


# --- the prompt --------------------------------------------------------------------------------

FORMAT_REFERENCE = """\
ElexirionDSP pipeline format (compatible with pipeline_ex):
- One YAML document; everything under `workflow:` with `name` (snake_case), `description`,
  `inputs` (a list of {name, description, required, default}) and `steps` (non-empty list).
- Every step has a unique snake_case `name` and a `type`: claude, gemini, claude_smart,
  claude_extract, claude_session, claude_batch, claude_robust, parallel_claude, set_variable,
  for_loop, while_loop, data_transform, file_ops, pipeline.
- LLM steps need `prompt`: a LIST of parts, each a map: {type: static, content: "..."},
  {type: file, path: "relative/path"}, {type: previous_response, step: EARLIER_STEP,
  extract: "optional.field"}. previous_response may only name a step that runs EARLIER.
- claude: `claude_options: {model: sonnet|haiku|opus, max_turns: N, allowed_tools: [Read, Glob,
  Grep], system_prompt: "..."}`. gemini: `model: gemini-2.5-flash`, `token_budget:
  {temperature, max_output_tokens}`. claude_extract: `extraction_config: {format: text|json|
  markdown, post_processing: [extract_code_blocks, extract_key_points]}`.
- file_ops: `operation: list|copy|move|validate|convert`, `path`, `pattern` (relative paths
  only, inside the workspace). set_variable: `variables: {name: value}`.
- for_loop: `iterator: item`, `data_source: "STEP:field.path"`, `steps: [...]`; inside, use
  {{loop.item}}, {{loop.index}}.
- Templates: {{inputs.NAME}} (declared inputs only), {{steps.STEP.text}}, {{global_vars.X}}.
- Optional per step: `condition: "step.field == 'value'"`, `output_to_file: name.json`.
- No other top-level keys are needed; never use Python tags or anchors."""

GENESIS_SYSTEM = (
    "You write pipelines for ElexirionDSP. Answer with exactly one YAML document inside one "
    "```yaml fenced block and nothing else.\n\n"
    + FORMAT_REFERENCE
    + "\n\nExample for the request 'summarise the markdown files of the workspace':\n```yaml\n"
    + offline_pipeline("summarise the markdown files of the workspace")
    + "```"
)


def _first_prompt(request: str, name: str | None) -> str:
    naming = f" Name it `{name}`." if name else ""
    return (
        f"Write the pipeline for this request.{naming}\n\nRequest: {request}\n\n"
        "Return the complete YAML in one ```yaml block."
    )


def _fix_prompt(problems: list[Problem]) -> str:
    errors = [p for p in problems if p.severity == "error"]
    lines = [p.format() for p in errors[:MAX_PROBLEMS_SENT]]
    if len(errors) > MAX_PROBLEMS_SENT:
        lines.append(f"... and {len(errors) - MAX_PROBLEMS_SENT} more")
    return (
        "The validator rejected that pipeline:\n"
        + "\n".join(f"- {line}" for line in lines)
        + "\n\nFix every problem and return the whole corrected pipeline in one ```yaml block."
    )


async def generate_pipeline(
    request: str,
    provider: Provider,
    *,
    max_tries: int = 3,
    name: str | None = None,
    base_dir: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> GenesisResult:
    """Generate pipeline YAML for ``request`` (see the module docstring).

    ``name`` fixes the workflow name (the model is asked for it and held to it); ``base_dir``
    is where nested ``pipeline_file`` references resolve (see ``check_yaml``); ``on_progress``
    is told each stage in a short sentence (asking the model, repairing N problems, valid).
    """
    say = on_progress or (lambda _text: None)
    request = " ".join(str(request or "").split())
    if not request:
        raise InputError("Describe the pipeline you want first.")
    if len(request) > MAX_REQUEST_CHARS:
        raise InputError(
            f"The description is too long ({len(request):,} characters; "
            f"the limit is {MAX_REQUEST_CHARS:,})."
        )
    if name is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", name):
        raise InputError("A pipeline name is letters, digits, '_' or '-' and starts with a letter.")
    if provider.offline:
        say("building the pipeline with the offline demo model")
        yaml_text = offline_pipeline(request, name)
        problems, got = check_yaml(yaml_text, base_dir=base_dir)
        return GenesisResult(
            yaml_text=yaml_text,
            valid=not _has_errors(problems),
            problems=problems,
            attempts=1,
            name=got,
            offline=True,
        )
    messages: list[ChatMessage] = [ChatMessage("user", _first_prompt(request, name))]
    yaml_text, problems, got = "", [], ""
    # Every attempt (failed ones too) is booked in the ledger by the metered provider; the
    # result's usage and cost add them up at the ledger's price.
    booked: list[tuple[Usage, Decimal]] = []
    provider = bound_provider(provider, caller="genesis")

    def on_event(event: StreamEvent) -> None:
        if event.kind == "attempt" and event.data.get("cost_usd") is not None:  # metered
            price = Decimal(str(event.data["cost_usd"]))
            booked.append((Usage.from_dict(event.data.get("usage") or {}), price))

    attempts = 0
    tries = max(1, max_tries)
    for _ in range(tries):
        say(
            f"asking {provider.name} (attempt {attempts + 1}/{tries})"
            if attempts == 0
            else f"asking {provider.name} to repair {len(problems)} problem(s) "
            f"(attempt {attempts + 1}/{tries})"
        )
        before = len(booked)
        try:
            response = await complete(
                provider,
                LLMRequest(
                    messages=tuple(messages),
                    system=GENESIS_SYSTEM,
                    max_tokens=4096,
                    temperature=0.2,
                    kind="chat",
                ),
                on_event,
            )
        except ElexirionError as exc:
            log.warning("genesis: the model failed on attempt %d: %s", attempts + 1, exc.message)
            problems = [
                *(p for p in problems if p.severity == "error"),
                Problem(
                    message=f"the model failed: {exc.user_message}",
                    file=GENERATED_FILE,
                    hint="try again later",
                ),
            ]
            break
        attempts += 1
        if len(booked) == before:  # a provider that reports no attempts: its response
            booked.append((response.usage, response.cost))
        yaml_text = extract_yaml(response.text)
        problems, got = check_yaml(yaml_text, base_dir=base_dir, expected_name=name)
        say(f"attempt {attempts}: {sum(p.severity == 'error' for p in problems)} error(s)")
        if not _has_errors(problems):
            usage, cost = _totals(booked)
            return GenesisResult(yaml_text, True, problems, attempts, got, False, usage, cost)
        log.info("genesis: attempt %d has %d problem(s)", attempts, len(problems))
        messages += [
            ChatMessage("assistant", response.text),
            ChatMessage("user", _fix_prompt(problems)),
        ]
    errors = [p for p in problems if p.severity == "error"] or problems
    usage, cost = _totals(booked)
    return GenesisResult(yaml_text, False, errors, attempts, got, False, usage, cost)


def _totals(booked: list[tuple[Usage, Decimal]]) -> tuple[Usage, Decimal]:
    return sum((u for u, _ in booked), Usage()), sum((c for _, c in booked), Decimal("0"))


__all__ = [
    "FORMAT_REFERENCE",
    "GenesisResult",
    "check_yaml",
    "extract_yaml",
    "generate_pipeline",
    "offline_pipeline",
    "offline_workflow",
    "slug_name",
    "task_of",
]
