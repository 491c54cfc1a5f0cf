"""Workspace confinement shared by file steps and the Claude tool loop."""

from __future__ import annotations

import os
from pathlib import Path

from elexirion_app.core.errors import WorkspaceError


def resolve_in_workspace(
    workspace: Path, path: str | os.PathLike[str], *, must_exist: bool = False
) -> Path:
    """Resolve ``path`` inside ``workspace`` or raise ``WorkspaceError``.

    Relative paths are taken from the workspace; absolute paths are accepted when they lie
    inside it (pipeline_ex users pass ``CODE_FILE=/abs/path/in/workspace``). Either way the
    path is resolved first (``..`` collapsed, symlinks followed, anywhere on the way), so an
    escape or a symlink pointing out is refused. ``~`` is refused (no home expansion).
    """
    raw = os.fspath(path)
    if not raw or "\x00" in raw:
        raise WorkspaceError(f"invalid path {raw!r}")
    root = workspace.resolve()
    if raw.startswith("~"):
        raise WorkspaceError(f"path {raw!r} is outside the workspace {root}")
    # An absolute ``raw`` replaces ``root`` in the join: it is then checked like any other.
    candidate = (root / raw).resolve()
    if not candidate.is_relative_to(root):
        raise WorkspaceError(f"path {raw!r} is outside the workspace {root}")
    if must_exist and not candidate.exists():
        raise WorkspaceError(f"path {raw!r} does not exist in the workspace")
    return candidate


# --- pipeline files: the one place a pipeline name becomes a path ------------------------

MAX_PIPELINE_NAME = 64


def pipeline_slug(name: object) -> str:
    """A file-safe snake_case slug of a pipeline name (ASCII, at most 64 characters)."""
    from slugify import slugify  # python-slugify

    text = name if isinstance(name, str) else ""
    slug = slugify(text, max_length=MAX_PIPELINE_NAME, separator="_", word_boundary=True)
    return slug or "draft"


def pipeline_file(folder: Path, name: object, *, read_only: tuple[Path, ...] = ()) -> Path:
    """``folder/<slug>.yaml`` for a pipeline ``name`` — never outside ``folder`` (whatever
    the name holds: ``..``, slashes, a NUL) and never inside a ``read_only`` folder (the
    shipped pipelines). Raises ``WorkspaceError``, whose message names the pipeline (its
    file name) only, never the server's folders."""
    root = folder.resolve()
    target = (root / f"{pipeline_slug(name)}.yaml").resolve()
    if target.parent != root:
        raise WorkspaceError(
            f"pipeline {str(name)[:80]!r} would be written outside its library folder",
            user_message=f"The pipeline {target.name} cannot be written there.",
        )
    for protected in read_only:
        guarded = protected.resolve()
        if target == guarded or guarded in target.parents:
            raise WorkspaceError(f"{target.name} is a shipped pipeline; it is read-only")
    return target
