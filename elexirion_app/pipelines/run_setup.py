"""What a run is set up with: its document, inputs, workspace, output folder and builtins,
and where ``output_to_file`` writes.

- ``as_document``: a ``PipelineDocument`` as given, a YAML file loaded, or an inline mapping
  (``workflow:`` unwrapped) with the working directory as its base.
- ``resolve_inputs``: declared ``inputs:`` give defaults and required checks; undeclared
  inputs pass through.
- ``workspace_for`` / ``output_dir_for``: the folders given, else the document's
  ``workspace_dir`` (confined to its folder) and ``defaults.output_dir``; the workspace is made.
- ``builtins_for``: ``{{timestamp}}``, ``{{date}}``, ``{{execution_id}}``, ``{{workflow.*}}``.
- ``write_output``: strings raw, anything else pretty JSON, confined to the output folder.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import InputError
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.pipelines.defaults import declared_inputs
from elexirion_app.pipelines.loader import PipelineDocument
from elexirion_app.providers.base import Provider


def write_output(output_dir: Path, filename: str, result: Any) -> Path:
    """``output_to_file``: strings raw, anything else pretty JSON, confined to ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    target = resolve_in_workspace(output_dir, filename.strip())
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(result, str):
        target.write_text(result, encoding="utf-8")
    else:
        target.write_text(
            json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )
    return target


def as_document(doc_or_workflow: Any) -> PipelineDocument:
    from elexirion_app.pipelines import loader

    if isinstance(doc_or_workflow, PipelineDocument):
        return doc_or_workflow
    if isinstance(doc_or_workflow, str | Path):
        return loader.load_file(Path(doc_or_workflow))
    if isinstance(doc_or_workflow, Mapping):
        data = dict(doc_or_workflow)
        if isinstance(data.get("workflow"), Mapping):
            data = dict(data["workflow"])
        return PipelineDocument(workflow=data, file="<inline>", base_dir=Path.cwd())
    raise InputError(f"cannot run a {type(doc_or_workflow).__name__} as a pipeline")


def resolve_inputs(workflow: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Declared ``inputs:`` give defaults and required checks; undeclared inputs pass through."""
    values = dict(given)
    missing = []
    for spec in declared_inputs(workflow):
        name = spec["name"]
        if name in values and values[name] not in (None, ""):
            continue
        if "default" in spec:
            values[name] = spec["default"]
        elif spec.get("required"):
            missing.append(name)
    if missing:
        raise InputError(
            f"missing required input(s): {', '.join(missing)} (pass --input NAME=VALUE)"
        )
    return values


def workspace_for(doc: PipelineDocument, workspace: Path | str | None) -> Path:
    if workspace is not None:
        root = Path(workspace).resolve()
    else:
        sub = str(doc.workflow.get("workspace_dir") or "./workspace")
        root = resolve_in_workspace(doc.base_dir, sub)
    root.mkdir(parents=True, exist_ok=True)
    return root


def output_dir_for(workflow: Mapping[str, Any], output_dir: Path | str | None) -> Path:
    if output_dir is not None:
        return Path(output_dir).resolve()
    defaults = workflow.get("defaults") or {}
    configured = defaults.get("output_dir") if isinstance(defaults, Mapping) else None
    return (Path.cwd() / str(configured or "outputs")).resolve()


def builtins_for(run_id: str, workflow: Mapping[str, Any]) -> dict[str, Any]:
    now = _dt.datetime.now(_dt.UTC)
    return {
        "timestamp": now.strftime("%Y%m%d_%H%M%S"),
        "date": now.date().isoformat(),
        "execution_id": run_id,
        "workflow": {
            "name": workflow.get("name", ""),
            "description": workflow.get("description", ""),
            "version": workflow.get("version", ""),
        },
    }


def default_provider_for(kind: str) -> Provider:
    from elexirion_app.providers.registry import get_provider

    return get_provider(kind)
