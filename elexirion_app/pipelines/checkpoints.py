"""File checkpoints (``checkpoint_enabled``), written per step as pipeline_ex does.

Unlike pipeline_ex they are only *read* by an explicit resume (``load_latest``) and they are
removed when the run succeeds, so a finished pipeline is never silently skipped on re-run.

Besides pipeline_ex's keys a checkpoint keeps ``units``: every finished unit by path
(``step``, ``loop[2].inner``, ``nested>inner``), also those finished inside the step that
failed, so a resume does not repeat a loop's finished iterations or a nested pipeline's
finished steps. A checkpoint is written after each top-level step and when the run fails.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elexirion_app.pipelines.scope import Scope

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _safe(name: str) -> str:
    return _SAFE.sub("_", name).strip("._") or "pipeline"


def checkpoint_dir_for(workflow: Mapping[str, Any]) -> Path:
    """``checkpoint_dir`` (default ``./checkpoints``), relative to the current directory."""
    return (Path.cwd() / str(workflow.get("checkpoint_dir") or "./checkpoints")).resolve()


def resume_results_from(workflow: Mapping[str, Any]) -> dict[str, Any] | None:
    """Results of the finished units in the workflow's latest checkpoint, by path, or None.

    Top-level steps come from pipeline_ex's ``results``/``step_index``; units finished inside
    loops and nested pipelines from ``units`` (absent from older checkpoint files).
    """
    data = load_latest(checkpoint_dir_for(workflow), str(workflow.get("name", "pipeline")))
    if not data or not isinstance(data.get("results"), dict):
        return None
    names = [str(s.get("name")) for s in workflow.get("steps") or [] if isinstance(s, Mapping)]
    done = names[: int(data.get("step_index") or 0)]
    results = data["results"]
    reused = {
        n: results[n]
        for n in done
        if n in results
        and not (isinstance(results[n], dict) and results[n].get("success") is False)
    }
    units = data.get("units")
    if isinstance(units, dict):
        reused.update(units)
    return reused


@dataclass
class CheckpointWriter:
    directory: Path
    workflow_name: str
    run_id: str
    started: str

    @classmethod
    def for_workflow(cls, workflow: Mapping[str, Any], run_id: str) -> CheckpointWriter | None:
        if not workflow.get("checkpoint_enabled"):
            return None
        directory = checkpoint_dir_for(workflow)
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d_%H%M%S")
        return cls(directory, _safe(str(workflow.get("name", "pipeline"))), run_id, stamp)

    @property
    def run_file(self) -> Path:
        return self.directory / f"{self.workflow_name}_{self.started}_{self.run_id[:8]}.json"

    @property
    def latest_file(self) -> Path:
        return self.directory / f"{self.workflow_name}_latest.json"

    def write(self, steps_done: int, scope: Scope, units: Mapping[str, Any] | None = None) -> None:
        """Write the checkpoint after ``steps_done`` top-level steps (``units``: by path)."""
        data = {
            "workflow_name": self.workflow_name,
            "run_id": self.run_id,
            "step_index": steps_done,
            "results": scope.steps,
            "units": dict(units or {}),
            "execution_log": list(scope.steps),
            "timestamp": _dt.datetime.now(_dt.UTC).isoformat(),
            "variable_state": scope.variables,
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            text = json.dumps(data, default=str, ensure_ascii=False)
            for path in (self.run_file, self.latest_file):
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, path)
        except OSError:
            log.warning("could not write checkpoint in %s", self.directory, exc_info=True)

    def clear(self) -> None:
        for path in (self.run_file, self.latest_file):
            try:
                if path == self.latest_file and _run_of(path) not in (None, self.run_id):
                    continue  # another run wrote it since
                path.unlink(missing_ok=True)
            except OSError:
                log.warning("could not remove checkpoint %s", path, exc_info=True)


def _run_of(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run_id = data.get("run_id")
    return str(run_id) if run_id else None


def load_latest(directory: Path, workflow_name: str) -> dict[str, Any] | None:
    """The latest checkpoint of a workflow (for an explicit resume), or None."""
    path = directory / f"{_safe(workflow_name)}_latest.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data
