"""Which steps a step reads, and rewriting those references when a step is renamed.

CONTRACT:
- ``referenced_names(step, kind) -> set[str]`` — the names a step's own fields read (not its
  children's): ``previous_response`` prompt parts, ``{{steps.X...}}`` / ``{{previous_response:X}}``
  / ``{{X.field}}`` templates (parsed by ``pipelines.templating``), conditions (parsed by
  ``pipelines.conditions``) and ``data_source`` / ``input_source`` / ``right_source``
  (``previous_response:X[:path]``, ``X:path``). Bare names are candidates: the caller keeps
  those that are step names. Text that does not parse is skipped, never raised.
- ``renamed_values(step, kind, old, new) -> list[(path, text)]`` — the new text of every field
  of the step (path relative to the step) that reads step ``old``, rewritten to read ``new``;
  tokens are located by ``pipelines.expr.tokenize``, so other text is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from elexirion_app.core.errors import ConditionError, TemplateError
from elexirion_app.editor.tree import LOOP_TYPES, Path, scalar_name, step_type
from elexirion_app.pipelines import conditions, expr, templating

CONDITION_KEYS = frozenset({"condition", "break_condition", "continue_condition"})
SOURCE_KEYS = frozenset({"data_source", "input_source", "right_source"})
_SOURCE = re.compile(r"^(\s*)(previous_response[:.]?)?([A-Za-z0-9_\-]+)(.*)$", re.DOTALL)
_PREV_INNER = re.compile(r"^(\s*previous_response:)([A-Za-z_][A-Za-z0-9_\-]*)(.*)$", re.DOTALL)


def _own_keys(step: Mapping[str, Any], kind: str) -> Iterator[tuple[Any, Any]]:
    """The step's fields minus the lists of its children."""
    skip: set[str] = set()
    if kind == "step":
        stype = step_type(step)
        if stype in LOOP_TYPES:
            skip.add("steps")
        elif stype == "parallel_claude":
            skip.add("parallel_tasks")
        elif stype == "pipeline":
            skip.add("pipeline")
    for key, value in step.items():
        if key not in skip:
            yield key, value


def _fields(step: Mapping[str, Any], kind: str) -> Iterator[tuple[Path, str, Any]]:
    """(path, role, value): role is prev | template | condition | source."""
    for key, value in _own_keys(step, kind):
        if key in CONDITION_KEYS and kind == "step":
            yield from _condition_strings(value, (key,))
            continue
        stack: list[tuple[Any, Path]] = [(value, (key,))]
        while stack:
            cur, path = stack.pop()
            if isinstance(cur, str):
                if path[-1] in SOURCE_KEYS and "{{" not in cur:
                    yield path, "source", cur
                elif "{{" in cur:
                    yield path, "template", cur
            elif isinstance(cur, Mapping):
                if cur.get("type") == "previous_response" and "step" in cur:
                    yield (*path, "step"), "prev", cur["step"]
                stack.extend(
                    (v, (*path, k))
                    for k, v in cur.items()
                    if not (k == "step" and cur.get("type") == "previous_response")
                )
            elif isinstance(cur, list):
                stack.extend((v, (*path, i)) for i, v in enumerate(cur))


def _condition_strings(value: Any, path: Path) -> Iterator[tuple[Path, str, Any]]:
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        cur, cpath = stack.pop()
        if isinstance(cur, str):
            yield cpath, "condition", cur
        elif isinstance(cur, Mapping):
            stack.extend((v, (*cpath, k)) for k, v in cur.items() if k in ("and", "or", "not"))
        elif isinstance(cur, list):
            stack.extend((v, (*cpath, i)) for i, v in enumerate(cur))


# --- reading ----------------------------------------------------------------------------


def referenced_names(step: Mapping[str, Any], kind: str = "step") -> set[str]:
    """The step names (and bare-name candidates) a step's own fields read."""
    names: set[str] = set()
    for _path, role, value in _fields(step, kind):
        if role == "prev":
            name = scalar_name(value)
            if name:
                names.add(name)
        elif role == "template":
            names |= _template_names(value)
        elif role == "condition":
            try:
                names |= conditions.step_references(value)
            except ConditionError:
                continue
        elif role == "source":
            m = _SOURCE.match(value)
            if m and not value.strip().startswith("context:"):
                names.add(m.group(3))
    return names


def _template_names(text: str) -> set[str]:
    try:
        refs = templating.references(text)
    except TemplateError:
        return set()
    out: set[str] = set()
    for ref in refs:
        if (ref.root == "steps" and ref.path) or (ref.root == "bare" and ref.path):
            out.add(ref.path[0])
    return out


# --- renaming ---------------------------------------------------------------------------


def renamed_values(
    step: Mapping[str, Any], kind: str, old: str, new: str
) -> list[tuple[Path, Any]]:
    """The fields of ``step`` that read ``old``, rewritten to read ``new``."""
    out: list[tuple[Path, Any]] = []
    for path, role, value in _fields(step, kind):
        if role != "prev" and old not in value:
            continue  # cheap: most texts do not even contain the name
        if role == "prev":
            changed: Any = new if scalar_name(value) == old else value
        elif role == "template":
            changed = rewrite_template(value, old, new)
        elif role == "condition":
            changed = rewrite_condition(value, old, new)
        else:
            changed = rewrite_source(value, old, new)
        if changed != value:
            out.append((path, changed))
    return out


def rewrite_expression(text: str, old: str, new: str) -> str:
    """``steps.old`` and a path rooted at ``old`` inside one expression, by tokens."""
    try:
        tokens = expr.tokenize(text)
    except expr.ExprError:
        return text
    spots: list[int] = []
    for i, tok in enumerate(tokens):
        if tok.kind != "name":
            continue
        prev = tokens[i - 1] if i else None
        if prev is not None and prev.kind == "op" and prev.value == ".":
            continue
        nxt = tokens[i + 1]
        if tok.value == "steps" and nxt.kind == "op" and nxt.value == "." and i + 2 < len(tokens):
            target = tokens[i + 2]
            if target.kind == "name" and target.value == old:
                spots.append(target.pos)
        elif tok.value == old and not (nxt.kind == "op" and nxt.value == "("):
            spots.append(tok.pos)
    for pos in sorted(spots, reverse=True):
        text = text[:pos] + new + text[pos + len(old) :]
    return text


def rewrite_template(text: str, old: str, new: str) -> str:
    """Every ``{{ }}`` of ``text`` that reads step ``old`` rewritten to read ``new``."""
    try:
        parts = templating.split(text)
    except TemplateError:
        return text
    for part in reversed(parts):
        if isinstance(part, str):
            continue
        inner = part.raw[2:-2]
        m = _PREV_INNER.match(inner)
        if m:
            rest = m.group(3)
            changed = m.group(1) + new + rest if m.group(2) == old else inner
        else:
            changed = rewrite_expression(inner, old, new)
        if changed != inner:
            end = part.start + len(part.raw)
            text = text[: part.start] + "{{" + changed + "}}" + text[end:]
    return text


def rewrite_condition(text: str, old: str, new: str) -> str:
    if "{{" not in text:
        return rewrite_expression(text, old, new)
    text = rewrite_template(text, old, new)
    try:
        parts = templating.split(text)
    except TemplateError:
        return text
    out: list[str] = []
    for part in parts:
        out.append(rewrite_expression(part, old, new) if isinstance(part, str) else part.raw)
    return "".join(out)


def rewrite_source(text: str, old: str, new: str) -> str:
    if "{{" in text:
        return rewrite_template(text, old, new)
    m = _SOURCE.match(text)
    if not m or text.strip().startswith("context:") or m.group(3) != old:
        return text
    return m.group(1) + (m.group(2) or "") + new + m.group(4)
