"""Safe YAML loading with line numbers.

CONTRACT:
- ``load_text(text, filename="<string>") -> PipelineDocument`` and ``load_file(path)`` —
  ``yaml.safe_load`` semantics only (no Python tags), size/alias/depth capped; raise
  ``PipelineValidationError`` (with ``Problem``s carrying file and line) for unreadable YAML or
  a missing ``workflow:`` root.
- ``PipelineDocument.workflow`` is the plain dict under ``workflow:`` (defaults NOT yet
  applied); ``line_of(path)`` gives the source line of a field path like
  ``("steps", 2, "prompt", 0, "content")`` (nearest known parent when unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PipelineDocument:
    workflow: dict[str, Any]
    file: str = "<string>"
    base_dir: Path = field(default_factory=Path.cwd)
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def load_text(text: str, filename: str = "<string>", base_dir: Path | None = None) -> PipelineDocument:
    raise NotImplementedError


def load_file(path: Path) -> PipelineDocument:
    raise NotImplementedError
