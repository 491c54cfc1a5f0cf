"""Line diffs of two versions of a pipeline's YAML (difflib).

CONTRACT:
- ``line_diff(old, new, context=3) -> list[DiffLine]`` — unified-diff hunks as rows: kind
  ``"@"`` opens a hunk (``text`` is ``@@ -a,b +c,d @@``, no line numbers), ``" "`` a context
  line (both numbers), ``"-"`` a removed line (``old_no``), ``"+"`` an added line
  (``new_no``); numbers are 1-based, ``None`` where they do not apply. Line breaks are not
  part of ``text``. Equal texts give ``[]``.
- ``diff_stats(old, new) -> (added, removed)`` — how many lines were added and removed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from elexirion_app.editor.yamltext import split_lines

MAX_CONTEXT = 1000


@dataclass(frozen=True)
class DiffLine:
    kind: str  # " " | "+" | "-" | "@"
    text: str
    old_no: int | None
    new_no: int | None


def _lines(text: str) -> list[str]:
    return [ln.rstrip("\r\n\x85\u2028\u2029") for ln in split_lines(text)]


def line_diff(old: str, new: str, context: int = 3) -> list[DiffLine]:
    """See the module docstring."""
    a, b = _lines(old), _lines(new)
    context = max(0, min(int(context), MAX_CONTEXT))
    out: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
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
    return out


def _range(start: int, stop: int) -> str:
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def diff_stats(old: str, new: str) -> tuple[int, int]:
    """(added, removed) lines."""
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, _lines(old), _lines(new), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed
