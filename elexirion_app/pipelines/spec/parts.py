"""Prompt parts: the pieces a step's prompt is made of."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import Field

from elexirion_app.pipelines.spec.base import (
    TEXTAREA,
    UNUSED,
    Bool,
    Int,
    Scalar,
    SpecModel,
    union_members,
)


class StaticPart(SpecModel):
    """A fixed text (templates rendered)."""

    type: Literal["static"] = Field(description="The part type: `static`.")
    content: Scalar = Field(
        description="The text of the part; `{{ ... }}` templates render.",
        json_schema_extra=TEXTAREA,
    )


class FilePart(SpecModel):
    """The content of a file of the workspace (at most 2 MB)."""

    type: Literal["file"] = Field(description="The part type: `file`.")
    path: str = Field(description="The file's path, relative to the workspace.")


class PreviousResponsePart(SpecModel):
    """The result of an earlier step."""

    type: Literal["previous_response"] = Field(description="The part type: `previous_response`.")
    step: Scalar = Field(description="The name of an earlier step.")
    extract: str | None = Field(
        None,
        description="A path such as `a.b` looked up in the result (also inside an answer "
        "whose text is JSON); without it an LLM result gives its text.",
    )
    strict: Bool | None = Field(
        None, description="Fail the step when the `extract` path is missing (instead of nil)."
    )
    extract_with: Any = Field(None, description="Accepted, not used.", json_schema_extra=UNUSED)


class SessionContextPart(SpecModel):
    """The stored conversation of a session (empty outside the app)."""

    type: Literal["session_context"] = Field(description="The part type: `session_context`.")
    session_id: str | None = Field(None, description="The session whose conversation is read.")
    include_last_n: Int | None = Field(
        None, description="Accepted, not used.", json_schema_extra=UNUSED
    )


class ClaudeContinuePart(SpecModel):
    """The stored conversation of a session, followed by a new prompt."""

    type: Literal["claude_continue"] = Field(description="The part type: `claude_continue`.")
    session_id: str | None = Field(None, description="The session to continue.")
    new_prompt: str | None = Field(
        None, description="The text added after the conversation.", json_schema_extra=TEXTAREA
    )


PromptPart = Annotated[
    StaticPart | FilePart | PreviousResponsePart | SessionContextPart | ClaudeContinuePart,
    Field(discriminator="type"),
]
# A plain string (as a prompt or a part) is used as static content, with a warning.
Prompt: TypeAlias = Annotated[list[PromptPart | str], Field(min_length=1)] | str


PROMPT_PART_MODELS: tuple[type[SpecModel], ...] = union_members(PromptPart)
