"""Line diffs of two versions of a pipeline's YAML (difflib, bounded).

CONTRACT:
- ``line_diff(old, new, context=3) -> list[DiffLine]`` — unified-diff hunks as rows: kind
  ``"@"`` opens a hunk (``text`` is ``@@ -a,b +c,d @@``, no line numbers), ``" "`` a context
  line (both numbers), ``"-"`` a removed line (``old_no``), ``"+"`` an added line
  (``new_no``); numbers are 1-based, ``None`` where they do not apply. Line breaks are not
  part of ``text``. Equal texts give ``[]``.
- ``diff_stats(old, new) -> (added, removed)`` — how many lines were added and removed.
- ``compare(old, new, context=3) -> Comparison`` — both at once (one match of the lines).
- Bounded work: the common first and last lines are matched in linear time and difflib
  (superquadratic on repeated lines with ``autojunk=False``) sees only the lines between;
  a side over ``MAX_DIFF_LINES`` lines is ``InputError`` ("too large to diff, N lines vs
  M"). CPU work: callers run it in a worker thread.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from elexirion_app.core.errors import InputError
from elexirion_app.editor.yamltext import split_lines

MAX_CONTEXT = 1000
MAX_DIFF_LINES = 5000

Opcode = tuple[str, int, int, int, int]


@dataclass(frozen=True)
class DiffLine:
    kind: str  # " " | "+" | "-" | "@"
    text: str
    old_no: int | None
    new_no: int | None


@dataclass(frozen=True)
class Comparison:
    lines: list[DiffLine]
    added: int
    removed: int


def _lines(text: str) -> list[str]:
    return [ln.rstrip("\r\n\x85\u2028\u2029") for ln in split_lines(text)]


def _opcodes(a: list[str], b: list[str]) -> list[Opcode]:
    """difflib's opcodes for ``a`` → ``b``, with the common head and tail matched first."""
    if len(a) > MAX_DIFF_LINES or len(b) > MAX_DIFF_LINES:
        raise InputError(
            f"too large to diff, {len(a):,} lines vs {len(b):,} "
            f"(at most {MAX_DIFF_LINES:,} lines a version)"
        )
    head, most = 0, min(len(a), len(b))
    while head < most and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < most - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    a_mid, b_mid = a[head : len(a) - tail], b[head : len(b) - tail]
    out: list[Opcode] = [("equal", 0, head, 0, head)] if head else []
    if a_mid or b_mid:
        matcher = difflib.SequenceMatcher(None, a_mid, b_mid, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            out.append((tag, i1 + head, i2 + head, j1 + head, j2 + head))
    if tail:
        out.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    merged: list[Opcode] = []
    for op in out:  # neighbouring "equal" runs (head/tail beside difflib's) as one
        if merged and op[0] == "equal" and merged[-1][0] == "equal":
            last = merged.pop()
            op = ("equal", last[1], op[2], last[3], op[4])
        merged.append(op)
    return merged


def _grouped(codes: list[Opcode], n: int) -> list[list[Opcode]]:
    """Hunks with up to ``n`` lines of context (difflib's ``get_grouped_opcodes``)."""
    if not codes or (len(codes) == 1 and codes[0][0] == "equal"):
        return []
    codes = list(codes)
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = tag, max(i1, i2 - n), i2, max(j1, j2 - n), j2
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)
    groups: list[list[Opcode]] = []
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > n * 2:
            group.append((tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)))
            groups.append(group)
            group = []
            i1, j1 = max(i1, i2 - n), max(j1, j2 - n)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        groups.append(group)
    return groups


def compare(old: str, new: str, context: int = 3) -> Comparison:
    """See the module docstring."""
    a, b = _lines(old), _lines(new)
    context = max(0, min(int(context), MAX_CONTEXT))
    codes = _opcodes(a, b)
    out: list[DiffLine] = []
    for group in _grouped(codes, context):
        first, last = group[0], group[-1]
        i1, i2, j1, j2 = first[1], last[2], first[3], last[4]
        out.append(DiffLine("@", f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@", None, None))
        for tag, ai1, ai2, bj1, bj2 in group:
            if tag == "equal":
                for k in range(ai2 - ai1):
                    out.append(DiffLine(" ", a[ai1 + k], ai1 + k + 1, bj1 + k + 1))
                continue
            for k in range(ai1, ai2):
                out.append(DiffLine("-", a[k], k + 1, None))
            for k in range(bj1, bj2):
                out.append(DiffLine("+", b[k], None, k + 1))
    added = sum(j2 - j1 for tag, _, _, j1, j2 in codes if tag in ("replace", "insert"))
    removed = sum(i2 - i1 for tag, i1, i2, _, _ in codes if tag in ("replace", "delete"))
    return Comparison(out, added, removed)


def line_diff(old: str, new: str, context: int = 3) -> list[DiffLine]:
    """See the module docstring."""
    return compare(old, new, context).lines


def _range(start: int, stop: int) -> str:
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def diff_stats(old: str, new: str) -> tuple[int, int]:
    """(added, removed) lines."""
    result = compare(old, new, 0)
    return result.added, result.removed
