"""Adding, deleting and moving the items of a block list by moving their lines.

CONTRACT:
- ``rewrite(source, seq_node, change, style) -> Replacement | None`` for a ``ListInsert``,
  ``ListDelete`` or ``ListMove`` on a block sequence with at least one item; ``None`` when the
  list is not laid out one ``- item`` per dash line (flow style, a dash sharing its line).
- Each item owns its block: the comment lines right above its dash (at most as indented as
  the dash), its content lines, and the comment lines right after them that are indented
  deeper than the dash. Whatever lies between two blocks (blank lines, loose comments) stays
  in place when items move; a deleted item's loose comments are kept. A new item is written
  by ruamel in the list's style, separated like its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from elexirion_app.editor.primitives import Change, ListDelete, ListInsert, ListMove
from elexirion_app.editor.yamltext import (
    Replacement,
    Source,
    Style,
    indent_of,
    is_blank,
    is_comment,
    newline_of,
    rt_dump,
    to_rt,
)


@dataclass(frozen=True)
class Layout:
    dash_col: int
    content_col: int  # item content column relative to the dash
    leads: list[int]  # first line of each block
    tails: list[int]  # line after each block


def layout(source: Source, seq: SequenceNode) -> Layout | None:
    if getattr(seq, "flow_style", False) or not seq.value:
        return None
    lines = source.lines
    d = int(seq.start_mark.column)
    dashes: list[int] = []
    for i, item in enumerate(seq.value):
        dash = _dash_line(source, item, d, floor=dashes[-1] + 1 if dashes else None)
        if dash is None or (i == 0 and dash != seq.start_mark.line):
            return None
        dashes.append(dash)
    first = seq.value[0]
    k = int(first.start_mark.column) - d if first.start_mark.line == dashes[0] else 2
    if k < 2:
        return None
    # Where one block ends and the next begins, read from the text between two dashes (the
    # content's own nodes are never walked: that is what makes a 200-step edit cheap).
    n = len(dashes)
    leads = [_lead(lines, dashes[i], d, dashes[i - 1] + 1 if i else 0) for i in range(n)]
    tails: list[int] = []
    for i in range(n - 1):
        end = leads[i + 1]
        while end - 1 > dashes[i] and _loose(lines[end - 1], d):
            end -= 1
        tails.append(end)
    end = source.last_line(seq.value[-1]) + 1
    while end < len(lines) and is_comment(lines[end]) and indent_of(lines[end]) > d:
        end += 1
    tails.append(end)
    return Layout(d, k, leads, tails)


def _lead(lines: list[str], dash: int, d: int, floor: int) -> int:
    """The first of the comment lines right above a dash that are not indented deeper."""
    lead = dash
    while lead - 1 >= floor and is_comment(lines[lead - 1]) and indent_of(lines[lead - 1]) <= d:
        lead -= 1
    return lead


def _loose(line: str, d: int) -> bool:
    """A line between two blocks: blank, or a comment not indented deeper than the dash."""
    return is_blank(line) or (is_comment(line) and indent_of(line) <= d)


def _dash_line(source: Source, item: Any, d: int, floor: int | None) -> int | None:
    lines = source.lines
    line = int(item.start_mark.line)
    if line < len(lines) and _is_dash(lines[line], d) and item.start_mark.column > d:
        return line
    line -= 1
    while line >= (floor or 0):
        text = lines[line]
        if _is_dash(text, d):
            rest = text[d + 1 :].strip()
            return line if not rest or rest.startswith("#") else None
        if not (is_blank(text) or is_comment(text)):
            return None
        line -= 1
    return None


def _is_dash(line: str, d: int) -> bool:
    return (
        line[:d].strip() == ""
        and line[d : d + 1] == "-"
        and line[d + 1 : d + 2] in (" ", "\n", "\r", "")
    )


def rewrite(source: Source, seq: SequenceNode, change: Change, style: Style) -> Replacement | None:
    lay = layout(source, seq)
    if lay is None:
        return None
    lines = source.lines
    nl = newline_of(source.text)
    n = len(seq.value)
    last = lay.tails[-1] - 1
    open_end = not lines[last].endswith(_BREAKS)  # the file ends inside the list's last item
    blocks = [(i, _ended(lines[lay.leads[i] : lay.tails[i]], nl)) for i in range(n)]
    gaps = [_ended(lines[lay.tails[i] : lay.leads[i + 1]], nl) for i in range(n - 1)]
    if isinstance(change, ListMove):
        blocks.insert(change.target, blocks.pop(change.source))
    elif isinstance(change, ListDelete):
        i = change.index
        blocks.pop(i)
        if i < n - 1:
            kept = [ln for ln in gaps.pop(i) if not is_blank(ln)]
            blocks[i] = (blocks[i][0], kept + blocks[i][1])
        else:
            kept = [ln for ln in gaps.pop(i - 1) if not is_blank(ln)]
            blocks[i - 1] = (blocks[i - 1][0], blocks[i - 1][1] + kept)
    elif isinstance(change, ListInsert):
        j = change.index
        near = gaps[min(max(j - 1, 0), len(gaps) - 1)] if gaps else []
        blocks.insert(j, (-1, _item_lines(change.value, lay, style, nl)))
        gaps.insert(min(j, n - 1), [nl] * sum(1 for ln in near if is_blank(ln)))
    else:
        return None
    if open_end and blocks[-1][0] != n - 1:
        patched = _close_last_block(source, seq, lay, blocks)
        if patched is None:
            return None
        blocks = patched
    out: list[str] = []
    for i, (_, block) in enumerate(blocks):
        out.extend(block)
        if i < len(gaps):
            out.extend(gaps[i])
    text = "".join(out)
    if open_end and blocks[-1][0] == n - 1:
        text = text[: -len(nl)]
    start = source.starts[lay.leads[0]]
    return Replacement(start, source.starts[last] + len(lines[last]), text)


_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


def _close_last_block(
    source: Source, seq: SequenceNode, lay: Layout, blocks: list[tuple[int, list[str]]]
) -> list[tuple[int, list[str]]] | None:
    """The file ended inside the old last item, which now gets a line break after it: a block
    scalar ending there (``|`` clip) must become ``|-`` to keep its value."""
    node = seq.value[-1]
    while isinstance(node, (MappingNode, SequenceNode)) and node.value:
        node = node.value[-1][1] if isinstance(node, MappingNode) else node.value[-1]
    if not isinstance(node, ScalarNode) or node.style not in ("|", ">"):
        return blocks
    if source.last_line(node) != lay.tails[-1] - 1:
        return blocks
    line, col = int(node.start_mark.line), int(node.start_mark.column)
    header = source.lines[line][col:].split("#", 1)[0].strip()
    if "+" in header:
        return None
    if "-" in header:
        return blocks
    out = []
    for index, block in blocks:
        if index == len(seq.value) - 1:
            at = line - lay.leads[index]
            text = block[at]
            block = [*block[:at], text[: col + 1] + "-" + text[col + 1 :], *block[at + 1 :]]
        out.append((index, block))
    return out


def _ended(lines: list[str], nl: str) -> list[str]:
    """The lines, the last one given a line break if it has none (the end of the file)."""
    if lines and not lines[-1].endswith(_BREAKS):
        return [*lines[:-1], lines[-1] + nl]
    return list(lines)


def _item_lines(value: Any, lay: Layout, style: Style, nl: str) -> list[str]:
    dumped = rt_dump(to_rt(value), style).split("\n")
    if dumped and dumped[-1] == "":
        dumped.pop()
    pad = " " * (lay.dash_col + lay.content_col)
    first = " " * lay.dash_col + "-" + " " * (lay.content_col - 1) + dumped[0]
    return [first + nl, *((pad + ln if ln.strip() else ln) + nl for ln in dumped[1:])]
