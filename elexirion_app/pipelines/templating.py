"""``{{ }}`` templates: our own small grammar (``expr``), never Python ``eval``.

CONTRACT (the executor codes against it):

- ``render(value, scope)`` — recursively interpolates every string inside ``value`` (str, list,
  tuple, dict values; other types returned as is; dict keys are not rendered). A string that is
  exactly one ``{{ expr }}`` (surrounding whitespace allowed) keeps the type of the value;
  otherwise values are stringified: maps/lists as JSON, null as ``""``, booleans as
  ``true``/``false``. Unresolved ``steps.``/``inputs.``/``global_vars.`` references stay
  verbatim (the raw ``{{...}}``); any other unknown name renders ``""`` (``""`` too for a
  whole-string template). Raises ``TemplateError`` on syntax errors and on evaluation errors
  (division by zero, arithmetic on text, ...). Substituted values are never re-rendered.
- ``references(text)`` — the names a template string refers to, for validation: a list of
  ``Reference(root, path, raw)`` where ``root`` is ``steps``/``inputs``/``global_vars``/
  ``state``/``loop``/``builtin``/``function``/``bare``. Raises ``TemplateError`` on bad syntax.
- ``check_syntax(text)`` — raises ``TemplateError`` with a clear message for bad syntax.

Name resolution inside an expression:

- ``inputs.x.y``, ``global_vars.x``, ``state.a.b`` (set_variable state), ``loop.*`` (the
  loop context ``scope.loop``: ``loop.<iterator>``, ``loop.index``, ``loop.parent.*`` ...).
- ``steps.NAME.path`` — ``scope.steps[NAME]`` then ``path``; a missing path falls back to
  ``scope.steps[NAME]["result"]`` + ``path``, then into the JSON of the step's ``text``/
  ``content`` (an LLM that answered with a JSON object: ``steps.review.score``).
- ``previous_response:NAME[.path|:path]`` (pipeline_ex files use it) = ``steps.NAME.path``.
- built-ins from ``scope.builtins``: ``timestamp``, ``date``, ``execution_id``,
  ``workflow.name`` ...
- a bare name: ``scope.variables``, ``scope.inputs``, ``scope.global_vars``, the loop iterator(s)
  (``scope.loop`` keys other than index/total/first/last/level/parent, then the parents').
- functions ``multiply add subtract divide max min round floor ceil`` (and the condition
  functions), one or more ``+ - * / %`` operations, comparisons, ``a ? b : c``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from elexirion_app.core.errors import TemplateError
from elexirion_app.pipelines import expr
from elexirion_app.pipelines.scope import Scope

OPEN, CLOSE = "{{", "}}"
VERBATIM_ROOTS = frozenset({"steps", "inputs", "global_vars"})
SCOPED_ROOTS = frozenset({"steps", "inputs", "global_vars", "state", "loop"})
BUILTIN_NAMES = frozenset({"timestamp", "date", "execution_id", "workflow", "run_id"})
MAX_JSON_TEXT = 1_000_000
LOOP_RESERVED = frozenset({"index", "total", "first", "last", "level", "parent", "iterator"})
_PREV_RESPONSE = re.compile(
    r"^previous_response:([A-Za-z_][A-Za-z0-9_\-]*)(?:[.:]([A-Za-z0-9_.\-]+))?$"
)


@dataclass(frozen=True)
class Reference:
    root: str
    path: tuple[str, ...]
    raw: str


@dataclass(frozen=True)
class Placeholder:
    """One ``{{ ... }}`` in a string: its raw text, its parsed expression, its offset."""

    raw: str
    node: expr.Node
    start: int


class _Unresolved(Exception):
    """A ``steps.``/``inputs.``/``global_vars.`` path that does not resolve (stay verbatim)."""


# --- scanning ---------------------------------------------------------------------------


def split(text: str) -> list[str | Placeholder]:
    """Split ``text`` into literal chunks and placeholders; ``TemplateError`` on bad syntax."""
    parts: list[str | Placeholder] = []
    pos = 0
    while True:
        start = text.find(OPEN, pos)
        if start < 0:
            break
        # ``{{{x}}}``: the innermost two braces open the template
        while text.startswith("{", start + 2):
            start += 1
        end = text.find(CLOSE, start + 2)
        if end < 0:
            raise TemplateError(f"unclosed '{{{{' at position {start}: add the closing '}}}}'")
        raw = text[start : end + 2]
        if start > pos:
            parts.append(text[pos:start])
        parts.append(Placeholder(raw, _parse_inner(raw[2:-2]), start))
        pos = end + 2
    if pos < len(text):
        parts.append(text[pos:])
    return parts


MAX_CACHED_CHARS = 500


def _parse_inner(inner: str) -> expr.Node:
    """Parse the text between the braces (cached for the short, common ones)."""
    return _parse_cached(inner) if len(inner) <= MAX_CACHED_CHARS else _parse_uncached(inner)


def _parse_uncached(inner: str) -> expr.Node:
    stripped = inner.strip()
    if not stripped:
        raise TemplateError("empty template '{{ }}': put a name inside, e.g. {{ inputs.topic }}")
    m = _PREV_RESPONSE.match(stripped)
    if m:
        rest = tuple(p for p in (m.group(2) or "").split(".") if p)
        return expr.Path(("steps", m.group(1), *rest))
    try:
        return expr.parse(stripped)
    except expr.ExprSyntaxError as exc:
        raise TemplateError(f"bad template '{{{{{inner}}}}}': {exc}") from exc


_parse_cached = lru_cache(maxsize=4096)(_parse_uncached)


def placeholders(text: str) -> list[Placeholder]:
    """The placeholders of ``text`` (``TemplateError`` on bad syntax)."""
    return [p for p in split(text) if isinstance(p, Placeholder)]


def has_template(text: str) -> bool:
    return OPEN in text


def whole_placeholder(text: str) -> Placeholder | None:
    """The placeholder when ``text`` is exactly one ``{{ expr }}`` (whitespace around ok)."""
    parts = split(text)
    found = [p for p in parts if isinstance(p, Placeholder)]
    others = [p for p in parts if isinstance(p, str)]
    if len(found) == 1 and all(not s.strip() for s in others):
        return found[0]
    return None


def check_syntax(text: str) -> None:
    """Raise ``TemplateError`` if any ``{{ }}`` in ``text`` is malformed."""
    split(text)


# --- resolution -------------------------------------------------------------------------


def _resolver(scope: Scope) -> expr.Resolver:
    def resolve(parts: tuple[str | int, ...]) -> Any:
        root, rest = parts[0], parts[1:]
        if root == "inputs":
            return _must(expr.get_path(scope.inputs, rest))
        if root == "global_vars":
            return _must(expr.get_path(scope.global_vars, rest))
        if root == "steps":
            return _must(step_value(scope, rest))
        if root == "state":
            return expr.get_path(scope.variables, rest)
        if root == "loop":
            return expr.get_path(scope.loop, rest) if scope.loop is not None else expr.MISSING
        if isinstance(root, str) and root in scope.builtins:
            return expr.get_path(scope.builtins[root], rest)
        return bare_value(scope, parts)

    return resolve


def _must(value: Any) -> Any:
    if value is expr.MISSING:
        raise _Unresolved
    return value


def step_value(scope: Scope, parts: tuple[str | int, ...]) -> Any:
    """``steps.NAME.path``: the path in the step result, else in its ``result`` key."""
    if not parts or parts[0] not in scope.steps:
        return expr.MISSING
    result = scope.steps[parts[0]]  # type: ignore[index]
    value = expr.get_path(result, parts[1:])
    if value is expr.MISSING and isinstance(result, dict) and "result" in result:
        value = expr.get_path(result["result"], parts[1:])
    if value is expr.MISSING and len(parts) > 1 and isinstance(result, dict):
        data = _json_text(result.get("text", result.get("content")))
        if data is not None:
            value = expr.get_path(data, parts[1:])
    return value


def _json_text(text: Any) -> Any:
    """The JSON object/list an LLM answered with (also inside a ``` fence), else None."""
    if isinstance(text, (dict, list)):
        return text
    if not isinstance(text, str) or len(text) > MAX_JSON_TEXT:
        return None
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0].strip()
    if not body.startswith(("{", "[")):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def bare_value(scope: Scope, parts: tuple[str | int, ...]) -> Any:
    """A bare name: variables, inputs, global_vars, then the loop iterator (innermost first)."""
    name, rest = parts[0], parts[1:]
    if name in scope.variables:
        return expr.get_path(scope.variables[name], rest)  # type: ignore[index]
    if name in scope.inputs:
        return expr.get_path(scope.inputs[name], rest)  # type: ignore[index]
    if name in scope.global_vars:
        return expr.get_path(scope.global_vars[name], rest)  # type: ignore[index]
    loop = scope.loop
    while isinstance(loop, dict):
        if name not in LOOP_RESERVED and name in loop:
            return expr.get_path(loop[name], rest)
        loop = loop.get("parent")
    return expr.MISSING


def evaluate_node(node: expr.Node, scope: Scope, raw: str = "") -> Any:
    """Evaluate one parsed placeholder; ``MISSING`` when it references an unresolved path."""
    try:
        return expr.evaluate(node, _resolver(scope))
    except _Unresolved:
        return expr.MISSING
    except expr.ExprError as exc:
        raise TemplateError(f"cannot evaluate {raw or 'template'}: {exc}") from exc


def evaluate_expression(text: str, scope: Scope) -> Any:
    """Evaluate one expression (without braces), e.g. a ``set_variable`` value."""
    value = evaluate_node(_parse_inner(text), scope, f"{{{{{text}}}}}")
    return None if value is expr.MISSING else value


def render_string(text: str, scope: Scope) -> Any:
    """Render one string (see ``render``)."""
    if OPEN not in text:
        return text
    parts = split(text)
    found = [p for p in parts if isinstance(p, Placeholder)]
    if len(found) == 1 and all(isinstance(p, Placeholder) or not p.strip() for p in parts):
        value = evaluate_node(found[0].node, scope, found[0].raw)
        if value is expr.MISSING:
            return found[0].raw if _is_verbatim(found[0].node) else ""
        return value
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = evaluate_node(part.node, scope, part.raw)
        if value is expr.MISSING:
            out.append(part.raw if _is_verbatim(part.node) else "")
        else:
            out.append(expr.to_text(value))
    return "".join(out)


def _is_verbatim(node: expr.Node) -> bool:
    """Does the expression read a ``steps.``/``inputs.``/``global_vars.`` path?"""
    return any(p.parts[0] in VERBATIM_ROOTS for p in expr.paths(node))


def render(value: Any, scope: Scope) -> Any:
    """Interpolate every string inside ``value`` (see the module docstring)."""
    if isinstance(value, str):
        return render_string(value, scope)
    if isinstance(value, dict):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    if isinstance(value, tuple):
        return tuple(render(v, scope) for v in value)
    return value


# --- references -------------------------------------------------------------------------


def references(text: str) -> list[Reference]:
    """Every name the templates of ``text`` read (``TemplateError`` on bad syntax)."""
    refs: list[Reference] = []
    for ph in placeholders(text):
        for node in expr.walk(ph.node):
            if isinstance(node, expr.Call):
                refs.append(Reference("function", (node.name,), ph.raw))
            elif isinstance(node, expr.Path):
                refs.append(classify(node.parts, ph.raw))
    return refs


def classify(parts: tuple[str | int, ...], raw: str = "") -> Reference:
    """Which root a path reads: steps/inputs/global_vars/state/loop/builtin/bare."""
    strs = tuple(str(p) for p in parts)
    root = strs[0]
    if root in SCOPED_ROOTS:
        return Reference(root, strs[1:], raw)
    if root in BUILTIN_NAMES:
        return Reference("builtin", strs, raw)
    return Reference("bare", strs, raw)
