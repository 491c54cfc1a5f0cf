"""Literal workspace paths: relative, and never leaving the workspace.

Whether a path really lies inside the workspace (symlinks, absolute paths) is known only when
the step runs; here we refuse what is visibly outside (``..``, ``~``, drive letters) and warn
about absolute paths. Templated parts (``{{ }}``) are skipped.
"""

from __future__ import annotations

import re
from typing import Any

from elexirion_app.pipelines.checks.context import Ctx


def check_relative(ctx: Ctx, raw: str, path: tuple[Any, ...], *, severity: str = "error") -> None:
    """Workspace paths must be relative and stay inside (templated parts are skipped)."""
    literal = re.sub(r"\{\{.*?\}\}", "x", raw)
    parts = re.split(r"[\\/]+", literal)
    if literal.startswith("/"):
        # Allowed when it resolves inside the run's workspace (checked when the step runs):
        # pipeline_ex users pass CODE_FILE=/abs/path/in/workspace.
        ctx.add(
            path,
            f"absolute path {raw!r} must lie inside the run's workspace",
            "prefer a path relative to the workspace",
            "warning",
        )
    elif literal.startswith(("\\", "~")) or re.match(r"^[A-Za-z]:[\\/]", literal):
        ctx.add(
            path,
            f"path {raw!r} is outside the workspace",
            "use a path relative to the workspace",
            severity,
        )
    elif ".." in parts:
        ctx.add(
            path,
            f"path {raw!r} leaves the workspace ('..')",
            "use a path inside the workspace",
            severity,
        )


def check_output_file(ctx: Ctx, value: Any, path: tuple[Any, ...]) -> None:
    """``output_to_file``: a non-empty relative file name."""
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        ctx.add(path, "output_to_file must be a file name")
        return
    check_relative(ctx, value, path)
