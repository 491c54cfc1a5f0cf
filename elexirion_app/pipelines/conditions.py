"""Step conditions: our own parser and evaluator (``expr``), never Python ``eval``.

CONTRACT:
- ``parse(condition)`` — ``condition`` is a string, ``{and: [...]}``, ``{or: [...]}``,
  ``{not: c}``, a list (AND), or an already-evaluated bool/number/None (the executor may hand
  over the typed value of a whole-string ``{{ }}``). Returns an immutable ``Condition``;
  raises ``ConditionError`` with a message naming the position and token on bad syntax.
- ``evaluate(condition, scope) -> bool`` — accepts the raw form or a parsed ``Condition``.
  Pass the RAW condition (do not render its templates first): ``{{ expr }}`` parts are
  unwrapped and evaluated against ``scope`` here, so values are never re-parsed as syntax.
- ``step_references(condition) -> set[str]`` — the step names a condition reads (validation):
  ``steps.X...`` gives ``X``; any other path not rooted at inputs/global_vars/state/loop/a
  built-in gives its first name (the caller decides whether that is a step or a variable).

String grammar: see ``expr`` — paths ``step.field.sub`` (also ``steps.step.field``),
``inputs.x``, ``global_vars.x``, ``state.x``, ``loop.x``, bare variables; ``== != > < >= <=
contains matches``, ``between X and Y``, ``+ - * / %``, ``and or not`` (also ``&& || !``),
``a ? b : c``, literals (quoted strings, numbers, true/false/null), ``.length``, functions
(length, startsWith, endsWith, toLowerCase, toUpperCase, trim, any, all, count, sum, average,
min, max, isEmpty, now, days, hours, minutes, seconds, abs, round, floor, ceil, sqrt, pow,
between, contains, matches). The result is truthy-tested: null, false, "", [], {} are false.

A bare path ``a.b`` resolves: ``scope.steps[a].b`` (falling back to the step's ``result``
key), then ``scope.variables``, then ``scope.inputs``, then the loop iterator(s); a missing
value is null (so ``x.score > 7`` is simply false when ``x`` did not run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from elexirion_app.core.errors import ConditionError
from elexirion_app.pipelines import expr
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.templating import bare_value, step_value

MAX_CONDITION_DEPTH = 50
_NON_STEP_ROOTS = frozenset(
    {"inputs", "global_vars", "state", "loop", "timestamp", "date", "execution_id", "workflow"}
)
_BRACES = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class Condition:
    """A parsed condition (an AST node)."""

    def nodes(self) -> list[expr.Node]:
        """Every expression node inside this condition."""
        raise NotImplementedError


@dataclass(frozen=True)
class ExprCondition(Condition):
    """A condition string: its source and its parsed expression."""

    source: str
    node: expr.Node

    def nodes(self) -> list[expr.Node]:
        return [self.node]


@dataclass(frozen=True)
class Constant(Condition):
    """An already-evaluated value (bool, number, null, empty)."""

    value: Any

    def nodes(self) -> list[expr.Node]:
        return []


@dataclass(frozen=True)
class AllOf(Condition):
    items: tuple[Condition, ...]

    def nodes(self) -> list[expr.Node]:
        return [n for item in self.items for n in item.nodes()]


@dataclass(frozen=True)
class AnyOf(Condition):
    items: tuple[Condition, ...]

    def nodes(self) -> list[expr.Node]:
        return [n for item in self.items for n in item.nodes()]


@dataclass(frozen=True)
class Not(Condition):
    item: Condition

    def nodes(self) -> list[expr.Node]:
        return self.item.nodes()


# --- parsing ----------------------------------------------------------------------------


def parse(condition: Any) -> Condition:
    """Parse any accepted form (see the module docstring) or raise ``ConditionError``."""
    if isinstance(condition, Condition):
        return condition
    return _parse(condition, 0)


def _parse(condition: Any, depth: int) -> Condition:
    if depth > MAX_CONDITION_DEPTH:
        raise ConditionError(f"condition nested deeper than {MAX_CONDITION_DEPTH} levels")
    if isinstance(condition, str):
        return _parse_string(condition)
    if condition is None or isinstance(condition, (bool, int, float)):
        return Constant(condition)
    if isinstance(condition, (list, tuple)):
        return AllOf(tuple(_parse(c, depth + 1) for c in condition))
    if isinstance(condition, dict):
        return _parse_map(condition, depth)
    raise ConditionError(
        f"a condition must be text, a map or a list, not {type(condition).__name__}"
    )


def _parse_map(condition: dict[Any, Any], depth: int) -> Condition:
    if len(condition) != 1:
        raise ConditionError(
            "a condition map needs exactly one key: 'and', 'or' or 'not' "
            f"(found {', '.join(map(str, condition)) or 'none'})"
        )
    key, value = next(iter(condition.items()))
    if key in ("and", "or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise ConditionError(f"'{key}:' needs a non-empty list of conditions")
        items = tuple(_parse(c, depth + 1) for c in value)
        return AllOf(items) if key == "and" else AnyOf(items)
    if key == "not":
        return Not(_parse(value, depth + 1))
    raise ConditionError(f"unknown condition key {key!r}: use 'and', 'or' or 'not'")


def _parse_string(text: str) -> Condition:
    """Parse a condition string (cached for the short, common ones)."""
    return _parse_cached(text) if len(text) <= 500 else _parse_uncached(text)


def _parse_uncached(text: str) -> Condition:
    source = unwrap_templates(text).strip()
    if not source:
        raise ConditionError("empty condition")
    try:
        return ExprCondition(text, expr.parse(source))
    except expr.ExprSyntaxError as exc:
        raise ConditionError(f"bad condition {text!r}: {exc}") from exc


_parse_cached = lru_cache(maxsize=2048)(_parse_uncached)


def unwrap_templates(text: str) -> str:
    """``"{{a}} and b"`` → ``"(a) and b"``: templates in conditions are just expressions."""
    if "{{" not in text:
        return text
    unwrapped = _BRACES.sub(lambda m: f"({m.group(1)})", text)
    if "{{" in unwrapped or "}}" in unwrapped:
        pos = unwrapped.find("{{") if "{{" in unwrapped else unwrapped.find("}}")
        raise ConditionError(f"bad condition {text!r}: unbalanced '{{{{ }}}}' near {pos}")
    return unwrapped


# --- evaluation -------------------------------------------------------------------------


def _resolver(scope: Scope) -> expr.Resolver:
    def resolve(parts: tuple[str | int, ...]) -> Any:
        root, rest = parts[0], parts[1:]
        if root == "steps":
            return step_value(scope, rest)
        if root == "inputs":
            return expr.get_path(scope.inputs, rest)
        if root == "global_vars":
            return expr.get_path(scope.global_vars, rest)
        if root == "state":
            return expr.get_path(scope.variables, rest)
        if root == "loop":
            return expr.get_path(scope.loop, rest) if scope.loop is not None else expr.MISSING
        if root in scope.steps:
            return step_value(scope, parts)
        value = bare_value(scope, parts)
        if value is expr.MISSING and isinstance(root, str) and root in scope.builtins:
            value = expr.get_path(scope.builtins[root], rest)
        return value

    return resolve


def evaluate(condition: Any, scope: Scope) -> bool:
    """Parse (if needed) and evaluate; ``ConditionError`` on bad syntax or evaluation."""
    parsed = parse(condition)
    return _eval(parsed, _resolver(scope))


def _eval(cond: Condition, resolve: expr.Resolver) -> bool:
    if isinstance(cond, Constant):
        return expr.truthy(cond.value)
    if isinstance(cond, ExprCondition):
        try:
            return expr.truthy(expr.evaluate(cond.node, resolve))
        except expr.ExprError as exc:
            raise ConditionError(f"cannot evaluate condition {cond.source!r}: {exc}") from exc
    if isinstance(cond, AllOf):
        return all(_eval(c, resolve) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(_eval(c, resolve) for c in cond.items)
    if isinstance(cond, Not):
        return not _eval(cond.item, resolve)
    raise ConditionError(f"unknown condition {cond!r}")  # pragma: no cover


# --- references -------------------------------------------------------------------------


def paths(condition: Any) -> list[tuple[str | int, ...]]:
    """Every path a condition reads (``ConditionError`` on bad syntax)."""
    return [p.parts for node in parse(condition).nodes() for p in expr.paths(node)]


def step_references(condition: Any) -> set[str]:
    """The step names a condition reads (see the module docstring)."""
    names: set[str] = set()
    for parts in paths(condition):
        root = str(parts[0])
        if root == "steps":
            if len(parts) > 1:
                names.add(str(parts[1]))
        elif root not in _NON_STEP_ROOTS:
            names.add(root)
    return names
