"""The catalogue of pipelines the agent can route to: name, description, inputs, keywords.

CONTRACT:
- ``load_catalogue(dirs) -> list[PipelineEntry]`` reads every ``*.yaml``/``*.yml`` of the given
  folders (a file path is read as itself) through the project's safe loader. A file that fails
  to load (bad YAML, no ``workflow:``, no ``name``) is skipped with a logged warning; of two
  files with the same workflow name the first one wins (also a warning).
- ``entry_from_workflow(workflow, path)`` builds one entry from an already loaded workflow map.

Keywords come from ``workflow.metadata.keywords`` (a list or a comma-separated string) plus a
small built-in table for the shipped pipelines (``code_analysis``, ``refactoring``,
``genesis``), so the offline router knows that "lint" or "smell" means code analysis.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from elexirion_app.core.errors import PipelineValidationError
from elexirion_app.pipelines.defaults import declared_inputs
from elexirion_app.pipelines.loader import load_file

log = logging.getLogger(__name__)

PathKind = Literal["file", "dir", "glob", ""]

# Keywords of the shipped pipelines (merged with a file's own ``metadata.keywords``).
BUILTIN_KEYWORDS: dict[str, tuple[str, ...]] = {
    "code_analysis": (
        "analyze",
        "analysis",
        "quality",
        "lint",
        "smell",
        "review",
        "audit",
        "bugs",
        "security",
        "inspect",
        "report",
    ),
    "refactoring": (
        "refactor",
        "clean up",
        "cleanup",
        "simplify",
        "restructure",
        "rewrite",
        "tidy",
        "improve code",
        "rename",
    ),
    "genesis": (
        "create pipeline",
        "generate pipeline",
        "make pipeline",
        "new pipeline",
        "build pipeline",
        "write pipeline",
    ),
}

_FILE_NAMES = frozenset({"file", "path", "file_path", "filepath", "code_file", "source_file"})
_DIR_NAMES = frozenset(
    {"target", "folder", "dir", "directory", "root", "source", "src", "target_dir", "project"}
)
_GLOB_NAMES = frozenset({"pattern", "glob", "files_pattern", "include"})


@dataclass(frozen=True)
class InputSpec:
    """One declared input of a pipeline (``workflow.inputs``)."""

    name: str
    description: str = ""
    required: bool = False
    default: Any = None

    @property
    def has_default(self) -> bool:
        return self.default is not None

    @property
    def path_kind(self) -> PathKind:
        """Whether this input takes a file path, a folder, a glob, or none of these."""
        name = self.name.lower()
        text = self.description.lower()
        if name in _GLOB_NAMES or "glob" in text:
            return "glob"
        if name in _FILE_NAMES or name.endswith(("_file", "_path")):
            return "file"
        if name in _DIR_NAMES or name.endswith(("_dir", "_folder")):
            return "dir"
        if re.search(r"\b(folder|directory)\b", text):
            return "dir"
        if re.search(r"\b(path|file)\b", text):
            return "file"
        return ""


@dataclass(frozen=True)
class PipelineEntry:
    """A pipeline the agent can run."""

    name: str
    path: Path
    description: str = ""
    inputs: tuple[InputSpec, ...] = ()
    keywords: tuple[str, ...] = ()

    def input(self, name: str) -> InputSpec | None:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None

    def path_input(self, kind: PathKind) -> InputSpec | None:
        """The first input taking a path of this kind (``file``, ``dir`` or ``glob``)."""
        for spec in self.inputs:
            if spec.path_kind == kind:
                return spec
        return None

    def defaults(self) -> dict[str, Any]:
        """The declared defaults of the inputs that have one."""
        return {s.name: s.default for s in self.inputs if s.has_default}

    @property
    def required_inputs(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.inputs if s.required and not s.has_default)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (used in the router's prompt and by the web layer)."""
        return {
            "name": self.name,
            "description": self.description,
            "inputs": [
                {
                    "name": s.name,
                    "description": s.description,
                    "required": s.required,
                    **({"default": s.default} if s.has_default else {}),
                }
                for s in self.inputs
            ],
        }


def _keywords(workflow: Mapping[str, Any], name: str) -> tuple[str, ...]:
    words: list[str] = []
    metadata = workflow.get("metadata")
    raw = metadata.get("keywords") if isinstance(metadata, Mapping) else None
    if raw is None:
        raw = workflow.get("keywords")
    if isinstance(raw, str):
        words += [w.strip() for w in raw.split(",")]
    elif isinstance(raw, list):
        words += [str(w).strip() for w in raw if isinstance(w, str | int | float)]
    words += BUILTIN_KEYWORDS.get(name, ())
    seen: dict[str, None] = {}
    for word in words:
        if word and word.lower() not in seen:
            seen[word.lower()] = None
    return tuple(seen)


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def entry_from_workflow(workflow: Mapping[str, Any], path: Path) -> PipelineEntry | None:
    """An entry for a loaded workflow map, or ``None`` when it has no usable name."""
    name = workflow.get("name")
    if not isinstance(name, str | int | float) or not str(name).strip():
        return None
    name = str(name).strip()
    inputs = tuple(
        InputSpec(
            name=str(spec["name"]),
            description=_text(spec.get("description")),
            required=bool(spec.get("required")),
            default=spec.get("default"),
        )
        for spec in declared_inputs(workflow)
    )
    return PipelineEntry(
        name=name,
        path=path,
        description=_text(workflow.get("description")),
        inputs=inputs,
        keywords=_keywords(workflow, name),
    )


def _files(dirs: Iterable[Path | str]) -> list[Path]:
    files: list[Path] = []
    for item in dirs:
        path = Path(item)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            log.warning("pipeline folder %s does not exist; skipped", path)
    return files


def load_catalogue(dirs: Iterable[Path | str]) -> list[PipelineEntry]:
    """Every loadable pipeline of ``dirs`` (see the module docstring), in file order."""
    entries: list[PipelineEntry] = []
    names: set[str] = set()
    for path in _files(dirs):
        try:
            doc = load_file(path)
        except PipelineValidationError as exc:
            log.warning("pipeline %s skipped: %s", path, exc.message)
            continue
        except OSError as exc:  # pragma: no cover - read_text maps OS errors already
            log.warning("pipeline %s skipped: %s", path, exc)
            continue
        entry = entry_from_workflow(doc.workflow, path)
        if entry is None:
            log.warning("pipeline %s skipped: the workflow has no name", path)
            continue
        if entry.name in names:
            log.warning("pipeline %s skipped: the name %r is already taken", path, entry.name)
            continue
        names.add(entry.name)
        entries.append(entry)
    return entries


__all__ = ["InputSpec", "PipelineEntry", "entry_from_workflow", "load_catalogue"]
