"""Inputs of a pipeline run found in a chat message: paths (``src/app.py``, ``in folder lib/``,
globs), "focus on ...", mapped onto the pipeline's path-like inputs, then its declared
defaults. No I/O, no reflex."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from elexirion_app.agent.catalogue import PipelineEntry
from elexirion_app.agent.words import STOPWORDS, _wordset

if TYPE_CHECKING:
    from elexirion_app.agent.router import RouteDecision

_EXTENSIONS = _wordset(
    """py pyi js mjs cjs ts tsx jsx ex exs erl heex rb go rs java kt kts c h cc cpp hpp cs php
    swift m mm scala clj hs ml lua r dart vue svelte sh bash zsh ps1 sql md rst txt json yaml
    yml toml ini cfg conf env html htm css scss less xml csv tsv ipynb lock gradle tf"""
)
_TRIM = "\"'`()[]{}<>,;:!?"
_DIR_PHRASE = re.compile(
    r"\b(?:(?:in|under|inside|within|of|on)\s+)?(?:the\s+|my\s+)?"
    r"(?:folder|directory|dir|package)\s+[\"'`]?([\w./-]+)"
    r"|\b(?:the\s+|my\s+)?[\"'`]?([\w./-]+?)[\"'`]?\s+(?:folder|directory|dir)\b",
    re.IGNORECASE,
)
_NOT_DIRS = frozenset({"structure", "layout", "names", "tree", "content", "contents", "size"})
_FOCUS = re.compile(
    r"\b(?:focus(?:ing)?\s+on|concentrat\w*\s+on|looking\s+for|goal\s*:)\s+(.+?)(?:[.!?]\s|[.!?]?$)",
    re.IGNORECASE,
)
_FOCUS_INPUTS = ("focus", "goal", "topic", "aspect", "aspects")


def _clean_path(raw: str) -> str:
    text = raw.strip(_TRIM)
    while text.endswith(".") and text not in (".", ".."):
        text = text[:-1]
    return text


def _is_file_like(text: str) -> bool:
    name = text.rsplit("/", 1)[-1]
    if "." not in name.strip("."):
        return False
    ext = name.rsplit(".", 1)[-1].lower()
    return ext in _EXTENSIONS or ("/" in text and ext.isalnum() and len(ext) <= 6)


def extract_paths(message: str) -> list[tuple[str, str]]:
    """``(kind, path)`` pairs found in ``message``: kind is ``file``, ``dir`` or ``glob``."""
    found: list[tuple[str, str]] = []
    for match in _DIR_PHRASE.finditer(message):
        raw = match.group(1) or match.group(2) or ""
        path = _clean_path(raw)
        word = path.lower()
        if path and word not in STOPWORDS and word not in _NOT_DIRS and not _is_file_like(path):
            found.append(("dir", path.rstrip("/") or "/"))
    for raw in message.split():
        if "://" in raw or raw.startswith(("http:", "https:", "mailto:", "@")):
            continue
        path = _clean_path(raw)
        if not path or path.startswith("--"):
            continue
        if "*" in path:
            found.append(("glob", path))
        elif _is_file_like(path):
            found.append(("file", path))
        elif "/" in path and re.fullmatch(r"[\w./~-]+", path):
            found.append(("dir", path.rstrip("/") or "/"))
        elif path in (".", "./"):
            found.append(("dir", "."))
    unique: dict[tuple[str, str], None] = {}
    for item in found:
        unique.setdefault(item, None)
    return list(unique)


def _strip_paths(message: str) -> str:
    return " ".join(w for w in message.split() if not ("/" in w or _is_file_like(_clean_path(w))))


def _map_paths(entry: PipelineEntry, paths: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Put found paths into the pipeline's path-like inputs (file, folder, glob)."""
    values: dict[str, str] = {}
    file_in, dir_in, glob_in = (entry.path_input(k) for k in ("file", "dir", "glob"))
    for kind, path in paths:
        if kind == "file":
            if file_in and file_in.name not in values:
                values[file_in.name] = path
            elif dir_in and glob_in and dir_in.name not in values:
                folder, _, name = path.rpartition("/")
                values[dir_in.name] = folder or "."
                values.setdefault(glob_in.name, name)
            elif dir_in and dir_in.name not in values:
                values[dir_in.name] = path
        elif kind == "dir":  # never a file input: "refactor src/" asks which file
            if dir_in and dir_in.name not in values:
                values[dir_in.name] = path
        elif kind == "glob" and glob_in and glob_in.name not in values:
            values[glob_in.name] = path
    return values


def _paths_of(decision: RouteDecision | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in decision.paths if decision is not None else ():
        kind, _, path = item.partition(":")
        if kind in ("file", "dir", "glob") and path:
            out.append((kind, path))
    return out


def extract_inputs(
    message: str,
    entry: PipelineEntry,
    *,
    carried: Sequence[tuple[str, str]] = (),
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Inputs for ``entry`` from the message (then ``carried`` paths, then the declared
    defaults) and the required inputs still missing."""
    values: dict[str, Any] = dict(entry.defaults())
    given = _map_paths(entry, carried)
    given.update(_map_paths(entry, extract_paths(message)))
    focus = _FOCUS.search(message)
    if focus:
        target = next((s for s in entry.inputs if s.name.lower() in _FOCUS_INPUTS), None)
        if target is not None:
            given[target.name] = focus.group(1).strip()
    values.update(given)
    missing = tuple(n for n in entry.required_inputs if values.get(n) in (None, ""))
    return values, missing
