"""File tools for the Claude tool loop, confined to the run's workspace.

pipeline_ex runs Claude Code, an agent with file tools; we run the Messages API and offer the
same read/write tools ourselves: ``Read``, ``Glob``, ``Grep``, ``LS``, ``Write``, ``Edit``.
Every path goes through ``core.paths.resolve_in_workspace`` (relative, or absolute inside the
workspace; no ``..`` escape, no ``~``, no symlinks pointing out); nothing shells out.
``Bash`` and the web tools are never offered: a pipeline asking for them gets a note in the
system prompt, and a model calling them gets a "tool not available" error result.

A tool never raises to the loop: every failure becomes ``ToolResult(is_error=True)`` that the
model can read. Outputs are capped (``Read`` 200 KB, ``Grep`` 500 matches, ``Glob``/``LS``
1000 entries).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import WorkspaceError
from elexirion_app.core.paths import resolve_in_workspace

log = logging.getLogger(__name__)

READ_MAX_BYTES = 200_000
READ_DEFAULT_LINES = 2000
GREP_MAX_MATCHES = 500
GREP_MAX_PATTERN = 1000
GREP_MAX_FILE_BYTES = 2_000_000
LIST_MAX_ENTRIES = 1000
WRITE_MAX_BYTES = 5_000_000
LINE_MAX_CHARS = 2000

SUPPORTED_TOOLS = ("Read", "Glob", "Grep", "LS", "Write", "Edit")


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns to the model."""

    output: str
    is_error: bool = False


class ToolFailure(Exception):
    """A tool failed in a way the model should be told about."""


TOOL_SCHEMAS: dict[str, dict[str, Any]] = {
    "Read": {
        "name": "Read",
        "description": (
            "Read a text file of the workspace. Returns numbered lines. Use offset/limit "
            "(1-based line offset, number of lines) for large files."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Path relative to the workspace."},
                "offset": {"type": "integer", "minimum": 1},
                "limit": {"type": "integer", "minimum": 1},
            },
            "required": ["path"],
        },
    },
    "Glob": {
        "name": "Glob",
        "description": "List workspace files matching a glob pattern such as '**/*.py'.",
        "input_schema": {
            "type": "object",
            "properties": {"pattern": {"type": "string"}},
            "required": ["pattern"],
        },
    },
    "Grep": {
        "name": "Grep",
        "description": (
            "Search workspace files for a regular expression (Python syntax). Returns "
            "'path:line: text' matches. Optional path (file or directory) and glob filter."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "pattern": {"type": "string"},
                "path": {"type": "string"},
                "glob": {"type": "string"},
            },
            "required": ["pattern"],
        },
    },
    "LS": {
        "name": "LS",
        "description": "List a workspace directory ('.' for the workspace root).",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": [],
        },
    },
    "Write": {
        "name": "Write",
        "description": "Create or overwrite a text file in the workspace.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
    "Edit": {
        "name": "Edit",
        "description": (
            "Replace old_string with new_string in a workspace file. old_string must occur "
            "exactly once unless replace_all is true."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "old_string": {"type": "string"},
                "new_string": {"type": "string"},
                "replace_all": {"type": "boolean"},
            },
            "required": ["path", "old_string", "new_string"],
        },
    },
}


def select_tools(
    allowed: Iterable[str], disallowed: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """``(offered, unavailable)``: supported tools in ``allowed`` minus ``disallowed``, and
    the requested names we cannot offer (``Bash``, ``WebFetch`` ...)."""
    denied = {_base_name(d) for d in disallowed}
    offered: list[str] = []
    unavailable: list[str] = []
    for raw in allowed:
        name = _base_name(raw)
        if not name or name in denied:
            continue
        if name in SUPPORTED_TOOLS:
            if name not in offered:
                offered.append(name)
        elif name not in unavailable:
            unavailable.append(name)
    return offered, unavailable


def _base_name(raw: str) -> str:
    """``Bash(git:*)`` → ``Bash`` (Claude Code's permission syntax)."""
    return str(raw).split("(", 1)[0].strip()


def tool_definitions(names: Sequence[str]) -> list[dict[str, Any]]:
    """Anthropic ``tools`` parameter for ``names``."""
    return [TOOL_SCHEMAS[n] for n in names if n in TOOL_SCHEMAS]


async def run_tool(
    name: str, tool_input: Mapping[str, Any], workspace: Path | None, offered: Sequence[str]
) -> ToolResult:
    """Execute one tool call; never raises (failures are ``is_error`` results)."""
    if name not in offered or name not in _IMPL:
        return ToolResult(f"Tool {name!r} is not available here.", is_error=True)
    if workspace is None:
        return ToolResult("No workspace is configured for this run.", is_error=True)
    if not isinstance(tool_input, Mapping):
        return ToolResult("Tool input must be a JSON object.", is_error=True)
    try:
        output = await asyncio.to_thread(_IMPL[name], workspace, tool_input)
    except WorkspaceError as exc:
        return ToolResult(f"Refused: {exc.message}", is_error=True)
    except ToolFailure as exc:
        return ToolResult(str(exc), is_error=True)
    except (OSError, UnicodeError, ValueError, TypeError) as exc:
        return ToolResult(f"{name} failed: {type(exc).__name__}: {exc}", is_error=True)
    return ToolResult(output)


# --- implementations (sync, run in a thread) ---------------------------------------------


def _str_arg(data: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise ToolFailure(f"Missing required argument {key!r}.")
        return ""
    if not isinstance(value, str):
        raise ToolFailure(f"Argument {key!r} must be a string.")
    return value


def _int_arg(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ToolFailure(f"Argument {key!r} must be an integer.")
    try:
        return int(value)
    except ValueError as exc:
        raise ToolFailure(f"Argument {key!r} must be an integer.") from exc


def _rel(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel or "."


def _read(workspace: Path, data: Mapping[str, Any]) -> str:
    path = resolve_in_workspace(workspace, _str_arg(data, "path"), must_exist=True)
    if path.is_dir():
        raise ToolFailure(f"{data['path']!r} is a directory; use LS.")
    offset = max(1, _int_arg(data, "offset") or 1)
    limit = max(1, _int_arg(data, "limit") or READ_DEFAULT_LINES)
    with path.open("rb") as fh:
        raw = fh.read(READ_MAX_BYTES + 1)
    truncated = len(raw) > READ_MAX_BYTES
    if b"\x00" in raw[:8192]:
        raise ToolFailure(f"{data['path']!r} looks like a binary file.")
    text = raw[:READ_MAX_BYTES].decode("utf-8", "replace")
    lines = text.splitlines()
    chosen = lines[offset - 1 : offset - 1 + limit]
    out = [f"{n:6d}\t{line[:LINE_MAX_CHARS]}" for n, line in enumerate(chosen, start=offset)]
    if truncated:
        out.append(f"[file truncated at {READ_MAX_BYTES} bytes]")
    elif offset - 1 + limit < len(lines):
        out.append(f"[{len(lines) - (offset - 1 + limit)} more lines: use offset/limit]")
    if not out:
        return "[empty file]" if not lines else "[no lines in that range]"
    return "\n".join(out)


def _walk(root: Path, start: Path) -> Iterable[Path]:
    """Files under ``start`` without following symlinked directories; symlinked files are
    yielded only when they resolve inside ``root``."""
    for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".git"))
        for fname in sorted(filenames):
            p = Path(dirpath) / fname
            if p.is_symlink():
                try:
                    resolve_in_workspace(root, p.relative_to(root))
                except WorkspaceError:
                    continue
            yield p


def _glob(workspace: Path, data: Mapping[str, Any]) -> str:
    pattern = _str_arg(data, "pattern").strip()
    if not pattern or os.path.isabs(pattern) or ".." in Path(pattern).parts:
        raise ToolFailure("The pattern must be relative to the workspace, without '..'.")
    root = workspace.resolve()
    matches: list[str] = []
    for p in _walk(root, root):
        rel = _rel(root, p)
        if _glob_match(rel, pattern):
            matches.append(rel)
            if len(matches) >= LIST_MAX_ENTRIES:
                matches.append(f"[stopped at {LIST_MAX_ENTRIES} entries]")
                break
    return "\n".join(matches) if matches else "No files match."


def _glob_match(rel: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(rel, pattern):
        return True
    if pattern.startswith("**/"):
        return _glob_match(rel, pattern[3:])
    if "/" not in pattern:
        return fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern)
    return False


def _grep(workspace: Path, data: Mapping[str, Any]) -> str:
    pattern = _str_arg(data, "pattern")
    if len(pattern) > GREP_MAX_PATTERN:
        raise ToolFailure(f"The pattern is longer than {GREP_MAX_PATTERN} characters.")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ToolFailure(f"Invalid regular expression: {exc}") from exc
    root = workspace.resolve()
    where = _str_arg(data, "path", required=False) or "."
    start = resolve_in_workspace(root, where, must_exist=True)
    file_glob = _str_arg(data, "glob", required=False)
    files = [start] if start.is_file() else list(_walk(root, start))
    hits: list[str] = []
    for f in files:
        rel = _rel(root, f)
        if file_glob and not _glob_match(rel, file_glob):
            continue
        try:
            if f.stat().st_size > GREP_MAX_FILE_BYTES:
                continue
            raw = f.read_bytes()
        except OSError:
            continue
        if b"\x00" in raw[:8192]:
            continue
        for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
            if regex.search(line):
                hits.append(f"{rel}:{n}: {line[:LINE_MAX_CHARS]}")
                if len(hits) >= GREP_MAX_MATCHES:
                    hits.append(f"[stopped at {GREP_MAX_MATCHES} matches]")
                    return "\n".join(hits)
    return "\n".join(hits) if hits else "No matches."


def _ls(workspace: Path, data: Mapping[str, Any]) -> str:
    root = workspace.resolve()
    where = _str_arg(data, "path", required=False) or "."
    path = resolve_in_workspace(root, where, must_exist=True)
    if not path.is_dir():
        raise ToolFailure(f"{data.get('path')!r} is not a directory.")
    entries: list[str] = []
    for child in sorted(path.iterdir(), key=lambda p: p.name):
        suffix = "/" if child.is_dir() and not child.is_symlink() else ""
        if child.is_symlink():
            suffix = " -> (link)"
        entries.append(child.name + suffix)
        if len(entries) >= LIST_MAX_ENTRIES:
            entries.append(f"[stopped at {LIST_MAX_ENTRIES} entries]")
            break
    return "\n".join(entries) if entries else "[empty directory]"


def _write(workspace: Path, data: Mapping[str, Any]) -> str:
    content = _str_arg(data, "content")
    encoded = content.encode("utf-8")
    if len(encoded) > WRITE_MAX_BYTES:
        raise ToolFailure(f"Content is larger than {WRITE_MAX_BYTES} bytes.")
    path = resolve_in_workspace(workspace, _str_arg(data, "path"))
    if path.is_dir():
        raise ToolFailure(f"{data['path']!r} is a directory.")
    path.parent.mkdir(parents=True, exist_ok=True)
    # re-check after mkdir: a symlinked parent must not lead out.
    path = resolve_in_workspace(workspace, _str_arg(data, "path"))
    path.write_bytes(encoded)
    return f"Wrote {len(encoded)} bytes to {_rel(workspace.resolve(), path)}."


def _edit(workspace: Path, data: Mapping[str, Any]) -> str:
    path = resolve_in_workspace(workspace, _str_arg(data, "path"), must_exist=True)
    old = _str_arg(data, "old_string")
    new = _str_arg(data, "new_string")
    replace_all = bool(data.get("replace_all"))
    if not old:
        raise ToolFailure("old_string must not be empty.")
    if path.is_dir():
        raise ToolFailure(f"{data['path']!r} is a directory.")
    text = path.read_text(encoding="utf-8")
    count = text.count(old)
    if count == 0:
        raise ToolFailure("old_string was not found in the file.")
    if count > 1 and not replace_all:
        raise ToolFailure(f"old_string occurs {count} times; make it unique or set replace_all.")
    updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    path.write_text(updated, encoding="utf-8")
    return f"Replaced {count if replace_all else 1} occurrence(s) in {data['path']}."


_IMPL: dict[str, Callable[[Path, Mapping[str, Any]], str]] = {
    "Read": _read,
    "Glob": _glob,
    "Grep": _grep,
    "LS": _ls,
    "Write": _write,
    "Edit": _edit,
}
