"""Writing changes into YAML text so that everything the change does not touch stays as it was.

CONTRACT:
- ``write(source, data, changes, style) -> (text, data, node)`` — the new text, its data
  (equal to ``yaml.safe_load(text)``) and its node tree. ``data`` is the current text's data.
- Lines outside the changed nodes are kept byte for byte. In order of preference:
  a changed scalar is replaced in place (same quoting; multi-line text as a literal block),
  a new key is written after its map's last line, a deleted key's lines are cut
  (``editor/fields.py``); a step added, deleted or moved in a block list moves its own lines
  (its leading comments and its deeper-indented trailing comments travel with it, blank lines
  stay where they are, ``editor/lists.py``);
  otherwise the smallest enclosing map is re-read and re-written by ruamel (its comments kept).
  Every result is read back and compared with the expected data; when it differs (or
  ruamel cannot read a piece), the next, coarser way is tried, the last one being the whole
  document through ruamel. ``InputError`` when none gives the expected data, or the result is
  larger than the loader's cap.
"""

from __future__ import annotations

import itertools
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap
from yaml.nodes import MappingNode, Node, SequenceNode

from elexirion_app.core.errors import InputError
from elexirion_app.editor import fields, lists
from elexirion_app.editor.fields import at_end, node_at
from elexirion_app.editor.primitives import (
    LIST_CHANGES,
    Change,
    DeleteKey,
    ListDelete,
    SetValue,
    apply,
    apply_copy,
    relative,
)
from elexirion_app.editor.readback import read_back
from elexirion_app.editor.tree import Path
from elexirion_app.editor.yamltext import (
    Replacement,
    SnippetError,
    Source,
    Style,
    dedent,
    newline_of,
    reindent,
    rt_dump,
    rt_load,
    style_of,
)
from elexirion_app.pipelines.loader import MAX_FILE_BYTES


class Unsupported(Exception):
    """This way of writing cannot express the change here (the next way is tried)."""


def write(source: Source, data: Any, changes: list[Change], style: Style) -> tuple[str, Any, Node]:
    expected = apply_copy(data, changes)
    attempts: list[str] = [] if source.shared_nodes else ["fine", "maps"]
    for mode in attempts:
        try:
            text = _splice(source, changes, style, fine=mode == "fine")
        except (Unsupported, SnippetError):
            continue
        result = _read_back(text, expected, source, data)
        if result is not None:
            return text, result[0], result[1]
    try:
        text = _whole(source, changes, style)
    except SnippetError as exc:
        raise InputError(f"this YAML cannot be rewritten by the editor: {exc}") from exc
    result = _read_back(text, expected, source, data)
    if result is None:
        raise InputError(
            "the editor could not write this change into the YAML without changing other "
            "values; make it in the YAML text instead"
        )
    return text, result[0], result[1]


def _read_back(text: str, expected: Any, source: Source, old: Any) -> tuple[Any, Node] | None:
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise InputError(f"the pipeline would be larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
    try:
        data, node = read_back(text, source, old)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        return None
    if node is None or data != expected:
        return None
    return data, node


# --- the plan ---------------------------------------------------------------------------


def _splice(source: Source, changes: list[Change], style: Style, *, fine: bool) -> str:
    root = source.root
    if root is None:
        raise Unsupported
    plan: list[tuple[Change, Replacement | None, Path | None]] = []
    for change in changes:
        done = _direct(source, root, change, style, fine=fine)
        plan.append((change, done, None if done is not None else _map_scope(root, change)))
    scopes = {scope for _, _, scope in plan if scope is not None}
    # a scope inside another scope, or a direct change inside a scope, joins the outer scope
    outer = [s for s in scopes if not any(_inside(s, o) for o in scopes)]
    merged: dict[Path, list[Change]] = {s: [] for s in outer}
    replacements: list[Replacement] = []
    for change, done, scope in plan:
        where = scope if scope is not None else change.path
        owner = next((o for o in outer if o == where or _inside(where, o)), None)
        if owner is not None:
            merged[owner].append(change)
        elif done is not None:
            replacements.append(done)
    for path, group in merged.items():
        replacements.append(_rewrite_map(source, root, path, group, style))
    return _apply_replacements(source.text, replacements)


def _inside(path: Path, scope: Path) -> bool:
    return len(path) > len(scope) and path[: len(scope)] == scope


def _apply_replacements(text: str, replacements: list[Replacement]) -> str:
    ordered = sorted(replacements, key=lambda r: r.start)
    for a, b in itertools.pairwise(ordered):
        if b.start < a.end:
            raise Unsupported
    for rep in reversed(ordered):
        text = text[: rep.start] + rep.text + text[rep.end :]
    return text


def _map_scope(root: Node, change: Change) -> Path:
    """The path of the nearest existing map enclosing the change."""
    target = change.path if isinstance(change, LIST_CHANGES) else change.path[:-1]
    chain, _ = node_at(root, target)
    depth = len(chain) - 1
    while depth > 0 and not isinstance(chain[depth], MappingNode):
        depth -= 1
    if not isinstance(chain[depth], MappingNode):
        raise Unsupported
    return target[:depth]


def _direct(
    source: Source, root: Node, change: Change, style: Style, *, fine: bool
) -> Replacement | None:
    """The change as a scalar replaced in place or list lines moved (None: rewrite a map)."""
    if isinstance(change, LIST_CHANGES):
        chain, _ = node_at(root, change.path)
        if len(chain) != len(change.path) + 1 or not isinstance(chain[-1], SequenceNode):
            return None
        if isinstance(change, ListDelete) and len(chain[-1].value) < 2:
            return None
        return lists.rewrite(source, chain[-1], change, style_of(chain[-1], style))
    if not fine:
        return None
    if isinstance(change, SetValue):
        return fields.set_scalar(source, root, change, style) or fields.add_key(
            source, root, change, style
        )
    if isinstance(change, DeleteKey):
        return fields.delete_key(source, root, change)
    return None


def _rewrite_map(
    source: Source, root: Node, path: Path, changes: list[Change], style: Style
) -> Replacement:
    """Re-read one map with ruamel, apply the changes to it, write it back in place."""
    chain, _ = node_at(root, path)
    if len(chain) != len(path) + 1 or not isinstance(chain[-1], MappingNode):
        raise Unsupported
    node = chain[-1]
    if not path:  # the whole document: the last way does that
        raise Unsupported
    start, end = source.span(node)
    col = int(node.start_mark.column)
    body = dedent(source.text[start:end].replace("\r\n", "\n"), col)
    obj = rt_load(body + "\n")
    if not isinstance(obj, CommentedMap):
        raise Unsupported
    for change in changes:
        try:
            apply(obj, relative(change, path), rt=True)
        except InputError as exc:
            raise Unsupported from exc
    out = rt_dump(obj, style_of(node, style))
    return Replacement(start, end, at_end(source, end, reindent(out, col, newline_of(source.text))))


def _whole(source: Source, changes: list[Change], style: Style) -> str:
    """The last way: the whole document read and written by ruamel."""
    obj = rt_load(source.text)
    for change in changes:
        apply(obj, change, rt=True)
    out = rt_dump(obj, style_of(source.root, style) if source.root is not None else style)
    nl = newline_of(source.text)
    return out.replace("\n", nl) if nl != "\n" else out
