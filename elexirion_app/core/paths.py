"""Workspace confinement shared by file steps and the Claude tool loop."""

from __future__ import annotations

import os
from pathlib import Path

from elexirion_app.core.errors import WorkspaceError


def resolve_in_workspace(
    workspace: Path, path: str | os.PathLike[str], *, must_exist: bool = False
) -> Path:
    """Resolve ``path`` inside ``workspace`` or raise ``WorkspaceError``.

    Refuses absolute paths, ``..`` escapes, and symlinks (anywhere on the way) that point out.
    """
    raw = os.fspath(path)
    if not raw or "\x00" in raw:
        raise WorkspaceError(f"invalid path {raw!r}")
    if os.path.isabs(raw) or raw.startswith("~"):
        raise WorkspaceError(f"absolute path {raw!r} is outside the workspace")
    root = workspace.resolve()
    candidate = (root / raw).resolve()
    if candidate != root and root not in candidate.parents:
        raise WorkspaceError(f"path {raw!r} is outside the workspace")
    if must_exist and not candidate.exists():
        raise WorkspaceError(f"path {raw!r} does not exist in the workspace")
    return candidate
