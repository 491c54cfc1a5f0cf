"""Request and response bodies of the API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_MESSAGE = 20_000
MAX_YAML = 1_000_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class ChatRequest(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"message": "What can you do?"}]}
    )
    message: str = Field(min_length=1, max_length=MAX_MESSAGE)
    conversation_id: int | None = Field(default=None, ge=1, le=2**62)


class ExecuteRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"pipeline": "examples/hello", "inputs": {"who": "API"}}]},
    )
    pipeline: str = Field(
        min_length=1,
        max_length=MAX_YAML,
        description="A pipeline's name (your library, or a shipped key such as "
        "`examples/hello`) or a whole pipeline as YAML text.",
    )
    inputs: dict[str, Any] = Field(default_factory=dict)


class ExecuteResponse(BaseModel):
    run_id: str
    status: str
    events_url: str


class StepOut(BaseModel):
    name: str
    type: str
    status: str
    model: str
    tokens: dict[str, int]
    cost_usd: str
    latency_ms: float
    error: str
    text: str


class RunOut(BaseModel):
    id: str
    pipeline: str
    status: str
    error: str
    cost_usd: str
    tokens: dict[str, int]
    created_at: str
    duration_s: float | None
    llm_calls: int
    failed_calls: int
    version: int | None
    inputs: dict[str, Any]
    steps: list[StepOut]


class CancelResponse(BaseModel):
    run_id: str
    status: str


class PipelineOut(BaseModel):
    name: str
    title: str
    description: str
    steps: int
    errors: int
    current_version: int
    updated_at: str
    shipped: bool


class VersionOut(BaseModel):
    number: int
    label: str
    message: str
    errors: int
    created_at: str


class PipelineDetailOut(BaseModel):
    name: str
    title: str
    shipped: bool
    yaml: str
    current_version: int
    versions: list[VersionOut]


class ValidateRequest(Strict):
    yaml: str = Field(max_length=MAX_YAML)


class ProblemOut(BaseModel):
    severity: str
    line: int | None
    path: str
    message: str
    hint: str


class ValidateResponse(BaseModel):
    valid: bool
    errors: int
    warnings: int
    problems: list[ProblemOut]


class UsageGroup(BaseModel):
    key: str
    calls: int
    errors: int
    cost_usd: str
    tokens: dict[str, int]


class UsageOut(BaseModel):
    since: str
    until: str
    calls: int
    errors: int
    cost_usd: str
    tokens: dict[str, int]
    group_by: str | None
    groups: list[UsageGroup]


class HealthOut(BaseModel):
    status: str
    db: str
    redis: str
