"""The typed spec of the pipeline_ex YAML format (pydantic models) and its JSON Schema.

CONTRACT:
- ``json_schema() -> dict`` — the JSON Schema of a whole pipeline file (``workflow:`` root),
  with a description for every step type, prompt part and field.
- ``parse(data) -> Workflow`` — the typed model of a loaded document: either the whole file
  (``{"workflow": {...}}``) or the content of ``workflow:``. Raises ``pydantic.ValidationError``
  when the structure does not fit.
- The models are the single source of the format's structure: validation's key tables and
  enum values are derived from them (``pipelines/checks/tables.py``, through
  ``spec.introspect``), and so are the inspector's forms (``spec.forms``) and the reference in
  ``docs/pipeline-format.md`` (``spec.docs``). ``pipelines/validate.py`` stays the judge of a
  file (references, models, paths, ...) and keeps reporting unknown keys as warnings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from elexirion_app.pipelines.spec.models import STEP_MODELS, PipelineFile, Step, Workflow

__all__ = ["STEP_MODELS", "PipelineFile", "Step", "Workflow", "json_schema", "parse"]


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    schema = PipelineFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pipeline_ex pipeline"
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a pipeline file (a fresh copy the caller may change)."""
    return copy.deepcopy(_schema())


def parse(data: Mapping[str, Any]) -> Workflow:
    """The typed ``Workflow`` of a loaded file or of the content of its ``workflow:`` key."""
    inner = data.get("workflow")
    if isinstance(inner, Mapping):
        return PipelineFile.model_validate({"workflow": inner}).workflow
    return Workflow.model_validate(data)
