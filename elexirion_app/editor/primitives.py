"""The primitive changes every edit is made of, applied to plain data or to ruamel nodes.

CONTRACT:
- ``SetValue(path, value)``, ``DeleteKey(path)``, ``ListInsert(path, index, value)``,
  ``ListDelete(path, index)``, ``ListMove(path, source, target)`` — paths from the document
  root; values are JSON-like (written fresh: never shared with the caller).
- ``apply(root, change, rt=False)`` — mutates ``root`` (plain dicts/lists, or ruamel's
  ``CommentedMap``/``CommentedSeq`` when ``rt``); ``SetValue`` creates missing maps on the way;
  ``InputError`` when the path crosses something that is not a map or list, or an index is out
  of range.
- ``apply_copy(data, changes)`` — the changed data as a new tree sharing every untouched part
  with ``data`` (which is not modified).
- ``relative(change, prefix)`` — the same change with ``prefix`` removed from its path.
"""

from __future__ import annotations

import copy
from collections.abc import MutableMapping, MutableSequence
from dataclasses import dataclass, replace
from typing import Any

from ruamel.yaml.comments import CommentedMap

from elexirion_app.core.errors import InputError
from elexirion_app.editor.tree import Path
from elexirion_app.editor.yamltext import to_plain, to_rt


@dataclass(frozen=True)
class SetValue:
    path: Path
    value: Any


@dataclass(frozen=True)
class DeleteKey:
    path: Path


@dataclass(frozen=True)
class ListInsert:
    path: Path
    index: int
    value: Any


@dataclass(frozen=True)
class ListDelete:
    path: Path
    index: int


@dataclass(frozen=True)
class ListMove:
    path: Path
    source: int
    target: int


Change = SetValue | DeleteKey | ListInsert | ListDelete | ListMove
LIST_CHANGES = (ListInsert, ListDelete, ListMove)


def relative(change: Change, prefix: Path) -> Change:
    return replace(change, path=change.path[len(prefix) :])


def _where(path: Path) -> str:
    return ".".join(str(p) for p in path) or "the document"


def _child(cur: Any, key: Any, path: Path, *, create: bool, rt: bool) -> Any:
    if isinstance(cur, MutableMapping):
        if key not in cur:
            if not create or isinstance(key, int):
                raise InputError(f"{_where(path)} does not exist")
            cur[key] = CommentedMap() if rt else {}
        return cur[key]
    if isinstance(cur, MutableSequence) and isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < len(cur):
            raise InputError(f"{_where(path)}: index {key} is out of range (0..{len(cur) - 1})")
        return cur[key]
    raise InputError(f"{_where(path[:-1])} is not a map or a list, so it has no {key!r}")


def _walk(root: Any, path: Path, *, create: bool, rt: bool) -> Any:
    cur = root
    for i, key in enumerate(path):
        cur = _child(cur, key, path[: i + 1], create=create, rt=rt)
    return cur


def _list(root: Any, path: Path, rt: bool) -> MutableSequence[Any]:
    found = _walk(root, path, create=False, rt=rt)
    if not isinstance(found, MutableSequence):
        raise InputError(f"{_where(path)} is not a list")
    return found


def _index(lst: MutableSequence[Any], index: int, path: Path, *, end: bool = False) -> int:
    top = len(lst) if end else len(lst) - 1
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= top:
        raise InputError(f"{_where(path)}: index {index!r} is out of range (0..{top})")
    return index


def apply(root: Any, change: Change, *, rt: bool = False) -> None:
    """Apply one change in place (see the module docstring)."""
    conv = to_rt if rt else to_plain
    if isinstance(change, SetValue):
        if not change.path:
            raise InputError("cannot replace the whole document")
        parent = _walk(root, change.path[:-1], create=True, rt=rt)
        key = change.path[-1]
        if isinstance(parent, MutableMapping):
            parent[key] = conv(change.value)
        elif isinstance(parent, MutableSequence) and isinstance(key, int):
            if _index(parent, key, change.path, end=True) == len(parent):
                parent.append(conv(change.value))
            else:
                parent[key] = conv(change.value)
        else:
            raise InputError(f"{_where(change.path[:-1])} is not a map or a list")
    elif isinstance(change, DeleteKey):
        parent = _walk(root, change.path[:-1], create=False, rt=rt)
        key = change.path[-1]
        if isinstance(parent, MutableMapping):
            parent.pop(key, None)
        elif isinstance(parent, MutableSequence) and isinstance(key, int):
            del parent[_index(parent, key, change.path)]
    elif isinstance(change, ListInsert):
        lst = _list(root, change.path, rt)
        lst.insert(_index(lst, change.index, change.path, end=True), conv(change.value))
    elif isinstance(change, ListDelete):
        lst = _list(root, change.path, rt)
        del lst[_index(lst, change.index, change.path)]
    elif isinstance(change, ListMove):
        lst = _list(root, change.path, rt)
        item = lst.pop(_index(lst, change.source, change.path))
        lst.insert(_index(lst, change.target, change.path, end=True), item)


def _thaw(root: Any, path: Path) -> Any:
    """A copy of ``root`` whose containers along ``path`` are copies (the rest is shared)."""
    new_root = copy.copy(root)
    cur = new_root
    for key in path:
        in_map = isinstance(cur, dict) and key in cur
        in_list = isinstance(cur, list) and isinstance(key, int) and 0 <= key < len(cur)
        if not (in_map or in_list):
            break
        child = cur[key]
        if not isinstance(child, (dict, list)):
            break
        child = copy.copy(child)
        cur[key] = child
        cur = child
    return new_root


def apply_copy(data: Any, changes: list[Change]) -> Any:
    """The data after ``changes``, sharing every untouched part with ``data``."""
    root = data
    for change in changes:
        root = _thaw(root, change.path)
        apply(root, change)
    return root
