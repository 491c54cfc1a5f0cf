"""Validation before execution: every problem at once, with file, line, field path and hint.

CONTRACT:
- ``validate_document(doc) -> list[Problem]`` — errors and warnings (``Problem.severity``).
- ``validate_file(path) -> list[Problem]`` — load + validate; load failures become problems.
- ``ensure_valid(doc)`` — raises ``PipelineValidationError`` if any problem is an error.
"""

from __future__ import annotations

from pathlib import Path

from elexirion_app.core.errors import Problem
from elexirion_app.pipelines.loader import PipelineDocument


def validate_document(doc: PipelineDocument) -> list[Problem]:
    raise NotImplementedError


def validate_file(path: Path) -> list[Problem]:
    raise NotImplementedError


def ensure_valid(doc: PipelineDocument) -> list[Problem]:
    raise NotImplementedError
