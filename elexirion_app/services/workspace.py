"""Per-user workspaces: the folder a user's pipeline runs and tools may touch.

Files live under ``<data_dir>/workspaces/<user_id>/`` — never under Reflex's upload dir,
which is served without auth. Uploads are checked: names are confined to the workspace, zip
archives are extracted member by member with path, count and size caps (zip bombs refused).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from elexirion_app.config import get_settings
from elexirion_app.core.errors import InputError, PermissionDenied, WorkspaceError
from elexirion_app.core.paths import resolve_in_workspace

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_WORKSPACE_BYTES = 50 * 1024 * 1024
MAX_FILES = 2000
MAX_ZIP_RATIO = 100  # uncompressed / compressed, per member


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int


def workspace_dir(user_id: int) -> Path:
    if not isinstance(user_id, int) or user_id <= 0:
        raise PermissionDenied()
    root = get_settings().data_dir / "workspaces" / str(user_id)
    root.mkdir(parents=True, exist_ok=True)
    return root


def allowed_folders() -> list[Path]:
    """Folders the admin allowed users to point a run at (``ELEXIRION_ALLOWED_FOLDERS``)."""
    raw = os.environ.get("ELEXIRION_ALLOWED_FOLDERS", "")
    return [Path(p).resolve() for p in raw.split(os.pathsep) if p.strip()]


def resolve_workspace(user_id: int, folder: str | None = None) -> Path:
    """The user's own workspace, or an admin-allowed folder named exactly."""
    if not folder:
        return workspace_dir(user_id)
    wanted = Path(folder).resolve()
    if wanted not in allowed_folders() or not wanted.is_dir():
        raise PermissionDenied("That folder is not one the admin allowed.")
    return wanted


def chosen_folder(user_id: int) -> str | None:
    """The admin-allowed folder the user works in, if they chose one that is still allowed."""
    from elexirion_app.db.engine import session_scope
    from elexirion_app.db.models import AppUser

    with session_scope() as session:
        user = session.get(AppUser, user_id)
        folder = user.workspace_folder if user is not None else None
    if folder and Path(folder).resolve() in allowed_folders():
        return folder
    return None


def choose_folder(user_id: int, folder: str | None) -> None:
    """Work in an admin-allowed folder (checked), or back in the user's own files (None)."""
    from elexirion_app.db.engine import session_scope
    from elexirion_app.db.models import AppUser

    if folder:
        folder = str(resolve_workspace(user_id, folder))
    with session_scope() as session:
        user = session.get(AppUser, user_id)
        if user is None:
            raise PermissionDenied()
        user.workspace_folder = folder or None
        session.add(user)


def current_workspace(user_id: int) -> Path:
    """Where the user's runs read and write: their chosen allowed folder or their own files."""
    return resolve_workspace(user_id, chosen_folder(user_id))


def list_files(root: Path, limit: int = MAX_FILES) -> list[FileEntry]:
    out: list[FileEntry] = []
    for path in sorted(root.rglob("*")):
        if len(out) >= limit:
            break
        if path.is_symlink() or not path.is_file():
            continue
        out.append(FileEntry(path.relative_to(root).as_posix(), path.stat().st_size))
    return out


def _used_bytes(root: Path) -> int:
    return sum(f.size for f in list_files(root, limit=10 * MAX_FILES))


def _safe_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError("A file has no name.")
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or name.startswith(("/", "~")):
        raise WorkspaceError(f"{name!r} would be written outside the workspace")
    return "/".join(parts)


def save_file(user_id: int, name: str, data: bytes) -> FileEntry:
    """Store one uploaded file (a .zip is extracted instead)."""
    root = workspace_dir(user_id)
    if name.lower().endswith(".zip"):
        entries = extract_zip(root, data)
        return FileEntry(f"{name} ({len(entries)} files)", sum(e.size for e in entries))
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{name} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB.")
    if _used_bytes(root) + len(data) > MAX_WORKSPACE_BYTES:
        raise InputError("The workspace is full (50 MB). Delete some files first.")
    rel = _safe_name(name)
    target = resolve_in_workspace(root, rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return FileEntry(rel, len(data))


def extract_zip(root: Path, data: bytes) -> list[FileEntry]:
    """Extract a zip into ``root`` with every member checked before anything is written."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError("That file is not a valid zip archive.") from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_FILES:
        raise InputError(f"The zip has more than {MAX_FILES} files.")
    total = 0
    plan: list[tuple[zipfile.ZipInfo, Path, str]] = []
    for m in members:
        mode = (m.external_attr >> 16) & 0o170000
        if mode == stat.S_IFLNK:
            raise WorkspaceError(f"{m.filename!r} is a symlink; links are not accepted")
        rel = _safe_name(m.filename)
        target = resolve_in_workspace(root, rel)
        if m.file_size > MAX_FILE_BYTES:
            raise InputError(f"{m.filename} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB.")
        if m.compress_size and m.file_size / m.compress_size > MAX_ZIP_RATIO:
            raise InputError(f"{m.filename} compresses suspiciously well (zip bomb?).")
        total += m.file_size
        plan.append((m, target, rel))
    if _used_bytes(root) + total > MAX_WORKSPACE_BYTES:
        raise InputError("The zip does not fit in the workspace (50 MB).")
    out: list[FileEntry] = []
    for m, target, rel in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(m) as src, target.open("wb") as dst:
            copied = _copy_limited(src, dst)
        out.append(FileEntry(rel, copied))
    return out


def _copy_limited(src: IO[bytes], dst: IO[bytes]) -> int:
    copied = 0
    while chunk := src.read(64 * 1024):
        copied += len(chunk)
        if copied > MAX_FILE_BYTES:
            raise InputError("A file in the zip is larger than it claims.")
        dst.write(chunk)
    return copied


def delete_file(user_id: int, rel: str) -> None:
    root = workspace_dir(user_id)
    target = resolve_in_workspace(root, _safe_name(rel), must_exist=True)
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
