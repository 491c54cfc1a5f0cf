"""The text side of the editor: lines, node spans, indentation styles, ruamel snippets.

CONTRACT:
- ``compose(text) -> (data, node)`` / ``make_loader(text)`` — PyYAML's safe loader over libyaml
  (C) for text that already passed the loader's checks; ``no_gc()`` pauses the cyclic
  collector around such a parse. ``Replacement(start, end, text)`` is one text change.
- ``Source(text)`` — the text with its lines and the node tree PyYAML's C composer gives (start
  and end marks of every node, composed once, lazily): ``span(node)`` is the character span of
  a node's own content (a block node ends at the end of its last content line: trailing
  comments and blank lines stay outside), ``last_line(node)`` its last content line.
- ``Style(mapping, sequence, offset)`` and ``style_of(node, default)`` — the indentation a node's
  block collections use (the most common one), for ruamel's ``indent()``.
- ``rt_load(text)`` / ``rt_dump(obj, style)`` — ruamel.yaml round-trip (``typ="rt"``,
  ``preserve_quotes``, no line wrapping, YAML 1.2 so untouched scalars keep their text; new
  values are quoted by ``to_rt`` when PyYAML would read them as another type).
- ``to_rt(value)`` / ``to_plain(value)`` — a JSON-like value as ruamel nodes (multi-line text
  as a literal block ``|``) or as fresh plain data; ``InputError`` for anything else, for
  values nested deeper than ``MAX_VALUE_DEPTH`` or with more than ``MAX_VALUE_NODES`` items.
"""

from __future__ import annotations

import gc
import io
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from elexirion_app.core.errors import InputError

MAX_VALUE_DEPTH = 30
MAX_VALUE_NODES = 20_000
_LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029]|$)")
_BLOCK_SAFE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029\ufeff]*")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SnippetError(Exception):
    """ruamel could not read or write a piece of the text (the caller falls back)."""


@dataclass(frozen=True)
class Replacement:
    """Text replacing the characters ``[start, end)``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Style:
    """ruamel's ``indent(mapping=, sequence=, offset=)``."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


DEFAULT_STYLE = Style()


def split_lines(text: str) -> list[str]:
    """Lines with their breaks, split where YAML (and PyYAML's marks) break lines."""
    lines = _LINE.findall(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def is_blank(line: str) -> bool:
    return not line.strip()


def is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a parse allocates its ~10 objects per line
    (they are not garbage: with a few documents open, the collections it triggers cost more
    than the parse itself). Only re-enabled by the caller that paused it."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def make_loader(text: str) -> Any:
    """PyYAML's safe loader over libyaml (C) for text that already passed the loader's checks."""
    return _Loader(text)


def compose(text: str) -> tuple[Any, Node | None]:
    """Data and node tree of text that already passed the loader's checks (C composer)."""
    loader = _Loader(text)
    try:
        with no_gc():
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


class Source:
    """A text, its lines and its node tree (see the module docstring)."""

    def __init__(self, text: str, node: Node | None = None) -> None:
        self.text = text
        self._node = node

    @cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)

    @cached_property
    def starts(self) -> list[int]:
        """The character offset where each line starts."""
        out, pos = [], 0
        for line in self.lines:
            out.append(pos)
            pos += len(line)
        return out

    @property
    def root(self) -> Node | None:
        if self._node is None:
            loader = _Loader(self.text)
            try:
                with no_gc():
                    self._node = loader.get_single_node()
            finally:
                loader.dispose()
        return self._node

    @cached_property
    def shared_nodes(self) -> bool:
        """Does the tree reuse a node (a YAML alias) or use a merge key? Then marks lie."""
        if "&" not in self.text and "<<" not in self.text:
            return False  # no anchor, no merge key: nothing can be shared
        seen: set[int] = set()
        stack = [self.root] if self.root is not None else []
        while stack:
            node = stack.pop()
            if id(node) in seen or node.tag == "tag:yaml.org,2002:merge":
                return True
            seen.add(id(node))
            if isinstance(node, MappingNode):
                stack.extend(n for pair in node.value for n in pair)
            elif isinstance(node, SequenceNode):
                stack.extend(node.value)
        return False

    def content(self, line: int) -> str:
        """A line without its break ("" past the end)."""
        if not 0 <= line < len(self.lines):
            return ""
        return self.lines[line].rstrip("\r\n\x85\u2028\u2029")

    def line_end(self, line: int) -> int:
        return self.starts[line] + len(self.content(line))

    def last_line(self, node: Node) -> int:
        """The last line holding the node's content (not trailing comments or blanks)."""
        if isinstance(node, ScalarNode):
            return self._scalar_last_line(node)
        if getattr(node, "flow_style", False):
            return int(node.end_mark.line)
        children: list[Node] = []
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        lines = [self.last_line(c) for c in children if not _is_empty_scalar(c)]
        return max([int(node.start_mark.line), *lines])

    def _scalar_last_line(self, node: ScalarNode) -> int:
        end = node.end_mark
        if node.style in ("|", ">"):
            last = int(end.line) - (1 if end.column == 0 else 0)
            header = self.text[node.start_mark.index : node.start_mark.index + 4]
            if "+" not in header.split("\n", 1)[0]:
                while last > node.start_mark.line and is_blank(self.lines[last]):
                    last -= 1
            return min(last, len(self.lines) - 1)
        return int(end.line) if end.column > 0 or end.line == node.start_mark.line else end.line - 1

    def span(self, node: Node) -> tuple[int, int]:
        """``[start, end)`` character offsets of the node's content."""
        start = int(node.start_mark.index)
        if isinstance(node, ScalarNode) and node.style not in ("|", ">"):
            return start, int(node.end_mark.index)
        if getattr(node, "flow_style", False):
            return start, int(node.end_mark.index)
        return start, self.line_end(self.last_line(node))


def _is_empty_scalar(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.value == "" and not node.style


# --- indentation ----------------------------------------------------------------------


STYLE_SAMPLE = 600


def style_of(node: Node | None, default: Style = DEFAULT_STYLE) -> Style:
    """The most common block indentation inside ``node`` (``default`` where it has none),
    from its first ``STYLE_SAMPLE`` nodes."""
    maps: Counter[int] = Counter()
    seqs: Counter[tuple[int, int]] = Counter()
    stack = [node] if node is not None else []
    seen: set[int] = set()
    while stack and len(seen) < STYLE_SAMPLE:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, SequenceNode):
            stack.extend(cur.value)
        if not isinstance(cur, MappingNode) or getattr(cur, "flow_style", False):
            continue
        for key, value in cur.value:
            stack.append(value)
            if getattr(value, "flow_style", False) or value.start_mark.line == key.start_mark.line:
                continue
            col = int(key.start_mark.column)
            if isinstance(value, MappingNode):
                maps[int(value.start_mark.column) - col] += 1
            elif isinstance(value, SequenceNode) and value.value:
                dash = int(value.start_mark.column) - col
                item = value.value[0]
                if item.start_mark.line == value.start_mark.line:
                    seqs[(int(item.start_mark.column) - col, dash)] += 1
    mapping = maps.most_common(1)[0][0] if maps else default.mapping
    sequence, offset = seqs.most_common(1)[0][0] if seqs else (default.sequence, default.offset)
    if mapping < 1:
        mapping = default.mapping
    offset = max(offset, 0)
    return Style(mapping, max(sequence, offset + 2), offset)


# --- ruamel -----------------------------------------------------------------------------


def _yaml(style: Style) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 1 << 20
    y.allow_unicode = True
    y.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return y


def rt_load(text: str) -> Any:
    """ruamel's round-trip reading of ``text`` (``SnippetError`` when it cannot)."""
    try:
        return _yaml(DEFAULT_STYLE).load(text)
    except (RuamelError, ValueError, TypeError, RecursionError) as exc:
        raise SnippetError(str(exc)) from exc


def rt_dump(obj: Any, style: Style) -> str:
    """ruamel's round-trip writing of ``obj`` (``SnippetError`` when it cannot)."""
    out = io.StringIO()
    try:
        _yaml(style).dump(obj, out)
    except (RuamelError, ValueError, TypeError, RecursionError) as exc:
        raise SnippetError(str(exc)) from exc
    return out.getvalue()


def reads_as_other_type(text: str) -> bool:
    """Would PyYAML (YAML 1.1) read this plain text as something else than a string?"""
    return _RESOLVER.resolve(ScalarNode, text, (True, False)) != _STR_TAG


def to_rt(value: Any) -> Any:
    """A JSON-like value as ruamel round-trip nodes (see the module docstring)."""
    return _convert(value, rt=True)


def to_plain(value: Any) -> Any:
    """A fresh plain copy of a JSON-like value (``InputError`` for anything else)."""
    return _convert(value, rt=False)


def _convert(value: Any, *, rt: bool) -> Any:
    count = [0]

    def conv(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > MAX_VALUE_NODES:
            raise InputError(f"the value has more than {MAX_VALUE_NODES} items")
        if depth > MAX_VALUE_DEPTH:
            raise InputError(f"the value is nested deeper than {MAX_VALUE_DEPTH} levels")
        if v is None or isinstance(v, (bool, int, float)):
            return v
        if isinstance(v, str):
            return _rt_str(v) if rt else str(v)
        if isinstance(v, dict):
            items = [(conv(k, depth + 1), conv(x, depth + 1)) for k, x in v.items()]
            if any(isinstance(k, (dict, list)) for k, _ in items):
                raise InputError("map keys must be text or numbers")
            return CommentedMap(items) if rt else dict(items)
        if isinstance(v, (list, tuple)):
            seq = [conv(x, depth + 1) for x in v]
            return CommentedSeq(seq) if rt else seq
        raise InputError(
            f"a {type(v).__name__} cannot be written to YAML: use text, numbers, "
            "true/false, lists or maps"
        )

    return conv(value, 0)


def _rt_str(text: str) -> str:
    if "\n" in text and "\r" not in text and _BLOCK_SAFE.fullmatch(text):
        return LiteralScalarString(text)
    if "\n" in text or reads_as_other_type(text):
        return DoubleQuotedScalarString(text)
    return str(text)


def reindent(dumped: str, col: int, newline: str) -> str:
    """ruamel output (starting at column 0) shifted right by ``col`` after its first line."""
    lines = dumped.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pad = " " * col
    shifted = [lines[0], *(pad + ln if ln.strip() else ln for ln in lines[1:])]
    return newline.join(shifted)


def dedent(text: str, col: int) -> str:
    """Remove up to ``col`` leading spaces from every line after the first."""
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        out.append(line[min(col, indent_of(line)) :])
    return "\n".join(out)
