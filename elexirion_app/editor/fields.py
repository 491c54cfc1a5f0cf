"""Field changes written in place: a scalar replaced, a key added after a map's last line, a
key's lines removed (each ``None`` when it cannot be done that way: the caller rewrites the
enclosing map instead).

CONTRACT:
- ``node_at(root, path) -> (chain, key_node)`` — the PyYAML nodes along ``path`` (stops where
  the path leaves the tree) and the key node of the last map step.
- ``set_scalar(source, root, SetValue, style)`` — an existing scalar's text replaced, in its
  old quoting where it can (multi-line text as a literal block ``|``).
- ``add_key(source, root, SetValue, style)`` — a missing key (with any missing maps on the way)
  written as new lines after the last content line of the deepest existing block map.
- ``delete_key(source, root, DeleteKey)`` — the lines of a key and its value removed (not the
  first key of a ``- key:`` item, not a map's only key).
- ``at_end(source, end, text)`` — ruamel's text given its line break at the end of a file that
  has none.
"""

from __future__ import annotations

from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from elexirion_app.editor.primitives import DeleteKey, SetValue
from elexirion_app.editor.tree import Path
from elexirion_app.editor.yamltext import (
    Replacement,
    Source,
    Style,
    newline_of,
    reindent,
    rt_dump,
    to_rt,
)

_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")
)


def _key_value(node: Node) -> Any:
    if isinstance(node, ScalarNode) and node.tag == _STR:
        return node.value
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def node_at(root: Node, path: Path) -> tuple[list[Node], Node | None]:
    chain: list[Node] = [root]
    key_node: Node | None = None
    for key in path:
        cur = chain[-1]
        if isinstance(cur, MappingNode):
            found = [(k, v) for k, v in cur.value if _key_value(k) == key]
            if not found:
                break
            key_node, nxt = found[-1]
        elif isinstance(cur, SequenceNode) and isinstance(key, int) and 0 <= key < len(cur.value):
            key_node, nxt = None, cur.value[key]
        else:
            break
        chain.append(nxt)
    return chain, key_node


def at_end(source: Source, end: int, text: str) -> str:
    return text + newline_of(source.text) if end >= len(source.text) else text


def _flow(node: Node) -> bool:
    return bool(getattr(node, "flow_style", False))


# --- replacing a scalar -----------------------------------------------------------------


def set_scalar(source: Source, root: Node, change: SetValue, style: Style) -> Replacement | None:
    value = change.value
    if isinstance(value, (dict, list, tuple)) or not change.path:
        return None
    chain, key_node = node_at(root, change.path)
    if len(chain) != len(change.path) + 1:
        return None
    node, parent = chain[-1], chain[-2]
    if not isinstance(node, ScalarNode) or _flow(parent):
        return None
    if (node.value == "" and not node.style) or node.tag not in _PLAIN_TAGS:
        return None
    start, end = source.span(node)
    block = node.style in ("|", ">")
    if block:
        header = source.content(int(node.start_mark.line))[int(node.start_mark.column) :]
        if "+" in header.split("#", 1)[0] or "#" in header:
            return None  # keep-chomping or a comment on the header line
    rendered = render(value, node.style, style)
    if "\n" in rendered:
        if key_node is None or not isinstance(parent, MappingNode):
            return None
        if not block and source.content(int(node.end_mark.line))[node.end_mark.column :].strip():
            return None  # a comment after the old value would end up inside the block
        col = int(key_node.start_mark.column)
        rendered = at_end(source, end, reindent(rendered, col, newline_of(source.text)))
    return Replacement(start, end, rendered)


def render(value: Any, old_style: str | None, style: Style) -> str:
    """The YAML text of one scalar value, in the old value's quoting where it can."""
    if value is None:
        return "null"
    converted = to_rt(value)
    if isinstance(value, str) and "\n" not in value:
        if old_style == '"':
            converted = DoubleQuotedScalarString(value)
        elif old_style == "'" and value.isprintable():
            converted = SingleQuotedScalarString(value)
    dumped = rt_dump(CommentedMap([("k", converted)]), style)
    body = dumped[2:].lstrip(" ")
    return body[:-1] if body.endswith("\n") else body


# --- adding and removing keys -----------------------------------------------------------


def add_key(source: Source, root: Node, change: SetValue, style: Style) -> Replacement | None:
    chain, _ = node_at(root, change.path)
    depth = len(chain) - 1  # path[:depth] exists
    if depth >= len(change.path):
        return None
    holder = chain[-1]
    if not isinstance(holder, MappingNode) or _flow(holder) or not holder.value:
        return None
    value: Any = change.value
    for key in reversed(change.path[depth + 1 :]):
        if isinstance(key, int):
            return None
        value = {key: value}
    key = change.path[depth]
    if isinstance(key, int):
        return None
    col = int(holder.value[0][0].start_mark.column)
    dumped = rt_dump(CommentedMap([(key, to_rt(value))]), style)
    nl = newline_of(source.text)
    pad = " " * col
    lines = [pad + ln if ln.strip() else ln for ln in dumped.split("\n")[:-1]]
    at = source.line_end(source.last_line(holder))
    return Replacement(at, at, nl + nl.join(lines))


def delete_key(source: Source, root: Node, change: DeleteKey) -> Replacement | None:
    if not change.path or isinstance(change.path[-1], int):
        return None
    chain, key_node = node_at(root, change.path)
    if len(chain) != len(change.path) + 1 or key_node is None:
        return None
    holder = chain[-2]
    if not isinstance(holder, MappingNode) or _flow(holder) or len(holder.value) < 2:
        return None
    first = int(key_node.start_mark.line)
    line = source.lines[first]
    if line[: int(key_node.start_mark.column)].strip():
        return None  # "- key:": the item's dash shares the line
    value = chain[-1]
    empty = isinstance(value, ScalarNode) and value.value == "" and not value.style
    last = first if empty else source.last_line(value)
    if last < first or any(n.start_mark.line <= last for n in _later_keys(holder, key_node)):
        return None
    start = source.starts[first]
    return Replacement(start, source.starts[last] + len(source.lines[last]), "")


def _later_keys(holder: MappingNode, key_node: Node) -> list[Node]:
    keys = [k for k, _ in holder.value]
    return keys[keys.index(key_node) + 1 :]
