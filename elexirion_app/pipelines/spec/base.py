"""The base of the spec: value types, enum values, field metadata, ``SpecModel``, ``StepBase``.

See ``spec/models.py`` for the contract of the models as a whole.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

TemplateStr = Annotated[str, StringConstraints(pattern=r"\{\{")]
"""A string holding a ``{{ ... }}`` template (its value is known only at run time)."""

Int: TypeAlias = int | TemplateStr
Number: TypeAlias = int | float | TemplateStr
Bool: TypeAlias = bool | TemplateStr
Scalar: TypeAlias = str | int | float
Condition: TypeAlias = str | bool | int | float | list[Any] | dict[str, Any]
Preset = Literal["development", "production", "analysis", "chat"]
OutputFormat = Literal["text", "json", "stream_json"]
Backoff = Literal["linear", "exponential", "fixed"]
FallbackAction = Literal[
    "graceful_degradation", "use_cached_response", "simplified_prompt", "emergency_response"
]
PostProcessing = Literal[
    "extract_code_blocks",
    "extract_recommendations",
    "extract_links",
    "extract_key_points",
    "format_markdown",
    "generate_summary",
]

# Field metadata (``json_schema_extra``), read by ``checks/tables.py`` and the forms.
IGNORED: dict[str, Any] = {"x-ignored": True}
"""A key accepted and ignored by pipeline_ex and by us (validation warns)."""


UNUSED: dict[str, Any] = {"x-unused": True}
"""A key accepted (for pipeline_ex's files) that changes nothing: forms put it under Advanced."""
TEXTAREA: dict[str, Any] = {"x-form": "textarea"}
"""A long text: forms give it a multi-line box."""
BASICS: dict[str, Any] = {"x-group": "Basics"}
"""An optional key that is still one of the first things to fill in (forms' Basics group)."""


def deprecated(instead: str) -> dict[str, Any]:
    """An older spelling still accepted; ``instead`` names what to write now."""
    return {"deprecated": True, "x-instead": instead}


class SpecModel(BaseModel):
    """Base of every model: unknown keys are kept (validation warns about them)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def union_members(union: Any) -> tuple[Any, ...]:
    """The models of an ``Annotated[A | B | ..., Field(discriminator=...)]`` union, in order."""
    return get_args(get_args(union)[0])


# --- what every step has ----------------------------------------------------------------


IGNORED_STEP_KEYS = frozenset({"output_schema", "options"})
"""Keys any step may carry that pipeline_ex and we ignore (validation warns); not fields, so
the JSON Schema and the forms leave them out (``gemini_instructor`` reads ``output_schema``:
there it is a field)."""


class StepBase(SpecModel):
    """Fields every step may have."""

    name: Scalar = Field(description="The step's name, unique within its list of steps.")
    condition: Condition | None = Field(
        None,
        description="The step runs only when this condition holds: a string expression, "
        "{and: [...]}, {or: [...]}, {not: c} or a list (all must hold).",
    )
    output_to_file: str | None = Field(
        None,
        description="A file name inside the output directory; text is written as it is, "
        "other results as indented JSON.",
    )
    role: Any = Field(None, description="Accepted, not used.", json_schema_extra=UNUSED)
    description: Any = Field(
        None, description="Free text about the step; not used.", json_schema_extra=UNUSED
    )
