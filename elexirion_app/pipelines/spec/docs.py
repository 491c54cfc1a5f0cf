"""The reference section of ``docs/pipeline-format.md``, generated from the spec descriptions.

CONTRACT:
- ``render_reference() -> str``: Markdown tables of every key of the format — the workflow,
  every step type, every prompt part and every nested map — with the value each key takes and
  its ``Field(description=...)`` text; deterministic.
- ``render_document(text) -> str``: ``text`` with everything between ``BEGIN``/``END`` replaced
  by the reference (the text around the markers is kept as it is); ``DocsError`` when the
  markers are missing or out of order.
- ``python -m elexirion_app.pipelines.spec.docs [--check] [--path FILE]`` writes the file
  (default ``docs/pipeline-format.md``); with ``--check`` it writes nothing and exits 1 when the
  file is out of date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from elexirion_app.core.errors import ElexirionError
from elexirion_app.pipelines.spec import introspect as si
from elexirion_app.pipelines.spec.describe import describe
from elexirion_app.pipelines.spec.models import (
    OPERATION_MODELS,
    PROMPT_PART_MODELS,
    STEP_MODELS,
    PipelineFile,
    SpecModel,
    StepBase,
    Workflow,
)


def slug(title: str) -> str:
    """The anchor a Markdown heading gets (GitHub's rule: lowercase, punctuation dropped)."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


BEGIN = "<!-- BEGIN GENERATED -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parents[3] / "docs" / "pipeline-format.md"
_TAGGED = (
    (STEP_MODELS, "type", "step"),
    (PROMPT_PART_MODELS, "type", "prompt part"),
    (OPERATION_MODELS, "operation", "operation"),
)
STEPS_TITLE = "Step types"
PARTS_TITLE = "Prompt part types"
OPERATIONS_TITLE = "`data_transform` operations"
_FAMILY_LINKS = {
    "step": f"[steps](#{slug(STEPS_TITLE)})",
    "prompt part": f"[prompt parts](#{slug(PARTS_TITLE)})",
    "operation": f"[operations](#{slug(OPERATIONS_TITLE)})",
}


class DocsError(ElexirionError):
    default_message = "The format documentation cannot be generated."


def _titles() -> dict[type[SpecModel], str]:
    """Every model's section title, named by where a user meets it (breadth first)."""
    titles: dict[type[SpecModel], str] = {}
    for models, key, what in _TAGGED:
        for model in models:
            titles[model] = f"`{si.tag(model, key)}` {what}"
    titles[Workflow] = "`workflow` map"
    queue: list[type[SpecModel]] = [Workflow, *STEP_MODELS, *PROMPT_PART_MODELS]
    while queue:
        model = queue.pop(0)
        for key in si.keys(model):
            for found, where in _models_in(si.field(model, key).annotation):
                if found not in titles:
                    titles[found] = f"`{key}` {where}"
                    queue.append(found)
    return titles


def _models_in(annotation: Any, where: str = "map") -> list[tuple[type[SpecModel], str]]:
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, SpecModel):
        return [(annotation, where)]
    if origin is list:
        where = "item"
    elif origin is dict:
        where = "entry"
    return [m for arg in get_args(annotation) for m in _models_in(arg, where)]


def _value(annotation: Any, titles: dict[type[SpecModel], str]) -> str:
    """A short description of the values a key takes, linking nested maps to their section."""

    def name(model: type[SpecModel]) -> str:
        for models, _key, what in _TAGGED:
            if model in models:
                return _FAMILY_LINKS[what]
        return f"[{titles[model]}](#{slug(titles[model])})"

    return describe(annotation, markdown=True, model_name=name)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(
    model: type[SpecModel], keys: Sequence[str], titles: dict[type[SpecModel], str]
) -> list[str]:
    rows = ["| key | value | description |", "| --- | --- | --- |"]
    for key in keys:
        info = si.field(model, key)
        extra = si.field_extra(model, key)
        value = _value(info.annotation, titles)
        if info.is_required():
            value = f"**required**; {value}"
        description = info.description or ""
        if extra.get("deprecated"):
            description += f" *Deprecated: write `{extra.get('x-instead', '')}`.*"
        rows.append(f"| `{key}` | {_cell(value)} | {_cell(description)} |")
    return rows


def _section(
    level: str, model: type[SpecModel], keys: Sequence[str], titles: dict[type[SpecModel], str]
) -> list[str]:
    doc = " ".join((model.__doc__ or "").split())
    out = [f"{level} {titles[model]}", "", doc, ""]
    if si.is_test_only(model):
        out[2] += " Only pipeline_ex's test fixtures use it; validation warns."
    if keys:
        out += [*_table(model, keys, titles), ""]
    return out


def render_reference() -> str:
    """The generated reference (Markdown, ending with a newline)."""
    titles = _titles()
    lines = [
        "This reference is generated from the descriptions of the typed spec",
        "(`elexirion_app/pipelines/spec/models.py`) by",
        "`python -m elexirion_app.pipelines.spec.docs`; do not edit it by hand.",
        "",
    ]
    lines += _section("###", Workflow, si.keys(Workflow), titles)
    lines += ["### Every step", "", " ".join((StepBase.__doc__ or "").split()), ""]
    lines += [*_table(StepBase, si.keys(StepBase), titles), ""]
    lines += [f"### {STEPS_TITLE}", ""]
    for step in STEP_MODELS:
        lines += _section("####", step, si.own_keys(step, StepBase), titles)
    lines += [f"### {PARTS_TITLE}", ""]
    for part in PROMPT_PART_MODELS:
        lines += _section("####", part, [k for k in si.keys(part) if k != si.TAG], titles)
    lines += [f"### {OPERATIONS_TITLE}", ""]
    for op in OPERATION_MODELS:
        lines += _section("####", op, [k for k in si.keys(op) if k != "operation"], titles)
    lines += ["### Maps inside steps and settings", ""]
    done = {Workflow, PipelineFile, *STEP_MODELS, *PROMPT_PART_MODELS, *OPERATION_MODELS}
    for model in titles:
        if model not in done:
            lines += _section("####", model, si.keys(model), titles)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def render_document(text: str) -> str:
    """``text`` with the generated reference between the markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0 or end < start or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise DocsError(f"the document needs exactly one {BEGIN} followed by one {END}")
    head = text[: start + len(BEGIN)]
    return f"{head}\n\n{render_reference()}\n{text[end:]}"


if __name__ == "__main__":  # python -m elexirion_app.pipelines.spec.docs [--check]
    from elexirion_app.cli_docs import main

    raise SystemExit(main())
