"""Per-user workspaces: the folder a user's pipeline runs and tools may touch.

Files live under ``<data_dir>/workspaces/<user_id>/`` — never under Reflex's upload dir,
which is served without auth. Uploads are streamed in chunks to a staging folder
(``<data_dir>/workspaces/.staging/``, same file system, outside every workspace) and moved
into place only once complete and checked: names are cleaned and confined to the workspace,
each file and the whole workspace have a size cap, and a zip archive is extracted member by
member into staging (path, count, size, ratio, CRC, encryption and file/folder clashes
checked), then moved in all at once — on any error nothing of it is left behind.

Everything here is blocking file or database work: web handlers call it via
``asyncio.to_thread``. OS errors become ``InputError``/``WorkspaceError`` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import IO, Any

from elexirion_app.config import get_settings
from elexirion_app.core.errors import (
    ElexirionError,
    InputError,
    PermissionDenied,
    WorkspaceError,
)
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.core.text import strip_unsafe

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 5 * 1024 * 1024
DEFAULT_QUOTA_BYTES = 50 * 1024 * 1024
QUOTA_ENV = "ELEXIRION_WORKSPACE_QUOTA_BYTES"
MAX_FILES = 2000
MAX_ZIP_RATIO = 100  # uncompressed / compressed, per member
MAX_NAME_BYTES = 255  # one path component, UTF-8 (the usual file-system limit)
MAX_PATH_BYTES = 1024  # a whole relative path, UTF-8
MAX_DEPTH = 32  # folders in a path: a/a/a/… 400 deep made every check quadratic and slow
MAX_FOLDER_CHARS = 4096
CHUNK_BYTES = 1024 * 1024

# C0 and C1 controls, DEL, and the bidi marks/embeddings/overrides/isolates that can make a
# name display as something else ("evil\u202egnp.exe").


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int


@dataclass(frozen=True)
class Overview:
    """What the workspace page shows: allowed folders, the chosen one, the files runs see."""

    folders: tuple[str, ...]
    current_folder: str
    files: tuple[FileEntry, ...]


def quota_bytes() -> int:
    """The per-user workspace quota (``ELEXIRION_WORKSPACE_QUOTA_BYTES``, default 50 MB)."""
    raw = os.environ.get(QUOTA_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    if raw:
        log.warning("%s=%r is not a positive integer; using the default", QUOTA_ENV, raw)
    return DEFAULT_QUOTA_BYTES


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.3g} MB"


@lru_cache(maxsize=4096)
def _root(data_dir: Path, user_id: int) -> Path:
    return data_dir.joinpath("workspaces", str(user_id))


def workspace_dir(user_id: int) -> Path:
    """The user's own folder, created if missing (every run start asks: one ``stat`` when it
    exists, its ``Path`` made once per user)."""
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise PermissionDenied()
    root = _root(get_settings().data_dir, user_id)
    if not os.path.isdir(root):
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
    if not isinstance(folder, str) or len(folder) > MAX_FOLDER_CHARS or "\x00" in folder:
        raise PermissionDenied("That folder is not one the admin allowed.")
    try:
        wanted = Path(folder).resolve()
    except (OSError, RuntimeError):
        raise PermissionDenied("That folder is not one the admin allowed.") from None
    if wanted not in allowed_folders() or not wanted.is_dir():
        raise PermissionDenied("That folder is not one the admin allowed.")
    return wanted


@cache
def _folder_query() -> Any:
    """The user's chosen folder: one column, by id, built once (on first use: the database
    layer is imported late here)."""
    from sqlalchemy import bindparam, select

    from elexirion_app.db.models import AppUser

    users = AppUser.__table__  # type: ignore[attr-defined]
    return select(users.c.workspace_folder).where(users.c.id == bindparam("user_id"))


def chosen_folder(user_id: int) -> str | None:
    """The admin-allowed folder the user works in, if they chose one that is still allowed
    (one column read by a driver statement, compiled once: every run start asks, and loading
    the whole user through the ORM was ~1 ms of it)."""
    from elexirion_app.db import driver_sql
    from elexirion_app.db.engine import get_engine, reading

    with reading(get_engine()) as conn:
        rows = driver_sql.fetch(conn, "workspace.folder", _folder_query, {"user_id": user_id})
    folder = rows[0][0] if rows else None
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


def overview(user_id: int) -> Overview:
    """Everything the workspace page shows, in one blocking call (run it in a thread)."""
    current = chosen_folder(user_id)
    files = list_files(resolve_workspace(user_id, current))
    return Overview(tuple(str(p) for p in allowed_folders()), current or "", tuple(files))


# --- listing ----------------------------------------------------------------------------


def _sorted_entries(path: str | Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        log.warning("cannot list %s: %s", path, exc)
        return []


def _walk_files(root: Path) -> Iterator[tuple[str, int]]:
    """``(relative posix path, size)`` of every regular file, in path order; links skipped."""
    stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = [("", iter(_sorted_entries(root)))]
    while stack:
        prefix, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        rel = prefix + entry.name
        try:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((rel + "/", iter(_sorted_entries(entry.path))))
            elif entry.is_file(follow_symlinks=False):
                yield rel, entry.stat(follow_symlinks=False).st_size
        except OSError as exc:
            log.warning("skipping %s in %s: %s", rel, root, exc)


def list_files(root: Path, limit: int = MAX_FILES) -> list[FileEntry]:
    out: list[FileEntry] = []
    for rel, size in _walk_files(root):
        if len(out) >= limit:
            break
        out.append(FileEntry(rel, size))
    return out


def _used_bytes(root: Path) -> int:
    return sum(size for _, size in _walk_files(root))


# --- names and errors -------------------------------------------------------------------


def _display(name: object, limit: int = 80) -> str:
    text = strip_unsafe(name) if isinstance(name, str) else repr(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_name(name: object) -> str:
    """A clean relative path: no controls or bidi marks, no ``..``, capped part and length."""
    if not isinstance(name, str):
        raise InputError("A file name must be text.")
    if len(name) > 4 * MAX_PATH_BYTES:
        raise InputError(f"The name {_display(name)} is too long.")
    cleaned = strip_unsafe(name)
    if not cleaned.strip():
        raise InputError("A file has no name.")
    normalized = cleaned.replace("\\", "/")
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or normalized.startswith(("/", "~")):
        raise WorkspaceError(f"{_display(name)!r} would be written outside the workspace")
    rel = "/".join(parts)
    if len(parts) > MAX_DEPTH:
        raise InputError(f"{_display(rel)} is nested more than {MAX_DEPTH} folders deep.")
    try:
        encoded = [p.encode("utf-8") for p in parts]
    except UnicodeEncodeError:
        raise InputError(f"The name {_display(name)} is not valid text.") from None
    for part, raw in zip(parts, encoded, strict=True):
        if len(raw) > MAX_NAME_BYTES:
            raise InputError(
                f"{_display(rel)}: the name {_display(part, 40)} is longer than "
                f"{MAX_NAME_BYTES} bytes."
            )
    if len(rel.encode("utf-8")) > MAX_PATH_BYTES:
        raise InputError(f"{_display(rel)}: the path is longer than {MAX_PATH_BYTES} bytes.")
    return rel


def _fs_error(rel: str, exc: OSError) -> ElexirionError:
    """A clear message naming the file for an OS error met while writing it."""
    shown = _display(rel)
    code = exc.errno
    if code == errno.ENAMETOOLONG:
        return InputError(f"{shown}: the name is too long for the server's file system.")
    if code in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY):
        return InputError(f"{shown}: a file and a folder of the same name clash.")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WorkspaceError(f"{shown}: the server is not allowed to write there.")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return WorkspaceError(f"{shown}: the server's disk is full.")
    log.warning("writing %s failed: %s", rel, exc)
    return WorkspaceError(f"{shown} could not be written ({exc.strerror or 'OS error'}).")


# --- staging and moving into place ------------------------------------------------------

_locks_guard = threading.Lock()
_user_locks: dict[int, threading.Lock] = {}


@contextlib.contextmanager
def _user_lock(user_id: int) -> Iterator[None]:
    """One writer at a time per user in this process (quota check and move are one step).
    A second upload of the same user is refused at once instead of holding a worker thread
    while it waits."""
    with _locks_guard:
        lock = _user_locks.setdefault(user_id, threading.Lock())
    if not lock.acquire(blocking=False):
        raise InputError("Another upload of yours is being saved; try again in a moment.")
    try:
        yield
    finally:
        lock.release()


def _log_cleanup_error(_fn: Any, path: str, exc_info: Any) -> None:
    log.error("could not remove staging path %s: %s", path, exc_info[1])


def _staging_dir(user_id: int) -> Path:
    base = get_settings().data_dir / "workspaces" / ".staging"
    try:
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{user_id}-", dir=base))
    except OSError as exc:
        raise _fs_error("the upload", exc) from exc


def sweep_staging(older_than_s: float = 3600.0) -> int:
    """Remove staging folders a dead process left behind (older than ``older_than_s``: a
    live upload in another worker is younger). Returns how many were removed."""
    base = get_settings().data_dir / "workspaces" / ".staging"
    if not base.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for entry in base.iterdir():
        try:
            if entry.is_dir() and not entry.is_symlink() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, onerror=_log_cleanup_error)
                removed += 1
        except OSError as exc:
            log.error("could not sweep staging path %s: %s", entry, exc)
    return removed


def _copy_limited(src: IO[bytes], dst: IO[bytes], limit: int, too_big: str) -> int:
    copied = 0
    while True:
        chunk = src.read(CHUNK_BYTES)
        if not chunk:
            return copied
        if not isinstance(chunk, bytes):
            raise InputError("The upload is not a file.")
        copied += len(chunk)
        if copied > limit:
            raise InputError(too_big)
        dst.write(chunk)


def _stage(src: IO[bytes], dst: Path, limit: int, too_big: str, rel: str) -> int:
    try:
        with dst.open("xb") as out:
            return _copy_limited(src, out, limit, too_big)
    except OSError as exc:
        raise _fs_error(rel, exc) from exc


def _check_target(root: Path, rel: str) -> Path:
    """The confined target of ``rel``; refused when a file/folder of the other kind is there."""
    target = resolve_in_workspace(root, rel)
    top = root.resolve()
    parts = target.relative_to(top).parts
    parent = top
    for part in parts[:-1]:  # each folder on the way once (linear in the depth)
        parent = parent / part
        if parent.exists() and not parent.is_dir():
            where = parent.relative_to(top).as_posix()
            raise InputError(
                f"{_display(rel)}: {_display(where)} is a file in your workspace, not a folder."
            )
    if target.is_dir():
        raise InputError(f"{_display(rel)} is a folder in your workspace, not a file.")
    return target


def _replaced_bytes(targets: list[Path]) -> int:
    return sum(t.stat().st_size for t in targets if t.is_file() and not t.is_symlink())


def _check_quota(root: Path, adding: int, targets: list[Path], what: str) -> None:
    quota = quota_bytes()
    if _used_bytes(root) - _replaced_bytes(targets) + adding > quota:
        raise InputError(f"{what} does not fit in the workspace ({_mb(quota)}). Delete some files.")


def _make_dirs(path: Path, made: list[Path]) -> None:
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        d.mkdir()
        made.append(d)


def _move_into_place(moves: list[tuple[Path, Path, str]], backups: Path) -> None:
    """Move staged files to their targets; on any error undo every move made so far."""
    done: list[tuple[Path, Path | None]] = []
    made: list[Path] = []
    try:
        for i, (staged, target, rel) in enumerate(moves):
            try:
                _make_dirs(target.parent, made)
                backup = None
                if target.exists() or target.is_symlink():
                    backup = backups / str(i)
                    os.replace(target, backup)
                done.append((target, backup))
                os.replace(staged, target)
            except OSError as exc:
                raise _fs_error(rel, exc) from exc
    except BaseException:
        _roll_back(done, made)
        raise


def _roll_back(done: list[tuple[Path, Path | None]], made: list[Path]) -> None:
    for target, backup in reversed(done):
        try:
            if backup is not None:
                os.replace(backup, target)
            else:
                target.unlink(missing_ok=True)
        except OSError as exc:
            log.error("could not undo the upload of %s: %s", target, exc)
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError as exc:
            log.error("could not remove folder %s after a failed upload: %s", d, exc)


# --- uploads ----------------------------------------------------------------------------


def save_file(user_id: int, name: str, data: bytes) -> FileEntry:
    """Store one uploaded file given as bytes (a .zip is extracted instead)."""
    return save_upload(user_id, name, io.BytesIO(data))


def save_upload(user_id: int, name: str, src: IO[bytes]) -> FileEntry:
    """Store one uploaded file read from ``src`` in chunks (a .zip is extracted instead).

    Blocking: call it in a thread. Nothing is left behind when it raises.
    """
    root = workspace_dir(user_id)
    rel = _safe_name(name)
    shown = _display(rel)
    staging = _staging_dir(user_id)
    try:
        if rel.lower().endswith(".zip"):
            archive = staging / "upload.zip"
            quota = quota_bytes()
            _stage(
                src, archive, quota, f"{shown} is larger than the workspace ({_mb(quota)}).", rel
            )
            entries = _extract_zip(user_id, root, archive, staging, shown)
            return FileEntry(f"{shown} ({len(entries)} files)", sum(e.size for e in entries))
        staged = staging / "file"
        size = _stage(
            src, staged, MAX_FILE_BYTES, f"{shown} is larger than {_mb(MAX_FILE_BYTES)}.", rel
        )
        with _user_lock(user_id):
            target = _check_target(root, rel)
            _check_quota(root, size, [target], shown)
            _move_into_place([(staged, target, rel)], staging)
        return FileEntry(rel, size)
    finally:
        shutil.rmtree(staging, onerror=_log_cleanup_error)


def _plan_zip(archive: zipfile.ZipFile, shown: str) -> list[tuple[zipfile.ZipInfo, str]]:
    """Every member checked before anything is extracted."""
    infos = archive.infolist()
    members = [m for m in infos if not m.is_dir()]
    if len(infos) > MAX_ZIP_ENTRIES:
        raise InputError(f"{shown} has more than {MAX_ZIP_ENTRIES:,} files and folders.")
    if len(members) > MAX_FILES:
        raise InputError(f"{shown} has more than {MAX_FILES} files.")
    plan: list[tuple[zipfile.ZipInfo, str]] = []
    files: set[str] = set()
    folders: set[str] = set()
    for m in infos:
        if m.is_dir():
            folders.add(_safe_name(m.filename))
            continue
        mode = (m.external_attr >> 16) & 0o170000
        if mode == stat.S_IFLNK:
            raise WorkspaceError(f"{_display(m.filename)!r} is a symlink; links are not accepted")
        rel = _safe_name(m.filename)
        if m.flag_bits & 0x1:
            raise InputError(f"{_display(rel)} in the zip is encrypted; that is not accepted.")
        if m.file_size > MAX_FILE_BYTES:
            raise InputError(f"{_display(rel)} is larger than {_mb(MAX_FILE_BYTES)}.")
        if m.compress_size and m.file_size / m.compress_size > MAX_ZIP_RATIO:
            raise InputError(f"{_display(rel)} compresses suspiciously well (zip bomb?).")
        if rel in files:
            raise InputError(f"{_display(rel)} appears twice in the zip.")
        files.add(rel)
        parts = rel.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        plan.append((m, rel))
    if len(folders) > MAX_FILES:
        raise InputError(f"{shown} makes more than {MAX_FILES:,} folders.")
    clashes = sorted(files & folders)
    if clashes:
        raise InputError(f"{_display(clashes[0])} is both a file and a folder in the zip.")
    return plan


MAX_ZIP_ENTRIES = 2 * MAX_FILES  # files and folders
MAX_ZIP_DIRECTORY_BYTES = 2 * 1024 * 1024


def _check_zip_directory(path: Path, shown: str) -> None:
    """Refuse before ``ZipFile`` parses the central directory: half a million folder
    entries in 44 MB cost 300 MB and seconds of CPU to parse, and counted as 0 files."""
    try:
        with path.open("rb") as fh:
            end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # the EOCD record
    except OSError as exc:
        raise _fs_error(shown, exc) from exc
    if not end:
        raise InputError(f"{shown} is not a valid zip archive.")
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > MAX_ZIP_ENTRIES or size > MAX_ZIP_DIRECTORY_BYTES:
        raise InputError(
            f"{shown} has {entries:,} entries; at most {MAX_ZIP_ENTRIES:,} files and folders."
        )


def _extract_zip(
    user_id: int, root: Path, path: Path, staging: Path, shown: str
) -> list[FileEntry]:
    _check_zip_directory(path, shown)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise InputError(f"{shown} is not a valid zip archive.") from None
    except OSError as exc:
        raise _fs_error(shown, exc) from exc
    with archive:
        plan = _plan_zip(archive, shown)
        declared = sum(m.file_size for m, _ in plan)
        quota = quota_bytes()
        if declared > quota:
            raise InputError(f"{shown} does not fit in the workspace ({_mb(quota)}).")
        tree = staging / "tree"
        staged: list[tuple[Path, str, int]] = []
        for m, rel in plan:
            dst = tree / rel
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(m) as src, dst.open("xb") as out:
                    size = _copy_limited(
                        src,
                        out,
                        min(m.file_size, MAX_FILE_BYTES),
                        f"{rel} is larger than it claims.",
                    )
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise InputError(f"{_display(rel)} in {shown} is damaged ({exc}).") from None
            except NotImplementedError:
                raise InputError(
                    f"{_display(rel)} in {shown} uses a compression method we cannot read."
                ) from None
            except RuntimeError as exc:  # zipfile: "File ... is encrypted, password required"
                raise InputError(f"{_display(rel)} in {shown} cannot be read ({exc}).") from None
            except OSError as exc:
                raise _fs_error(rel, exc) from exc
            staged.append((dst, rel, size))
    backups = staging / "replaced"
    try:
        backups.mkdir()
    except OSError as exc:
        raise _fs_error(shown, exc) from exc
    with _user_lock(user_id):
        moves = [(dst, _check_target(root, rel), rel) for dst, rel, _ in staged]
        _check_quota(root, sum(s for *_, s in staged), [t for _, t, _ in moves], shown)
        _move_into_place(moves, backups)
    return [FileEntry(rel, size) for _, rel, size in staged]


def delete_file(user_id: int, rel: str) -> None:
    root = workspace_dir(user_id)
    clean = _safe_name(rel)
    head, _, last = clean.rpartition("/")
    parent = resolve_in_workspace(root, head) if head else root.resolve()
    target = parent / last  # a link is removed itself, never what it points to
    if target == root.resolve() or not (target.exists() or target.is_symlink()):
        raise WorkspaceError(f"path {_display(clean)!r} does not exist in the workspace")
    try:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    except OSError as exc:
        raise _fs_error(clean, exc) from exc
