"""Step conditions: our own parser and evaluator, never Python ``eval``.

CONTRACT:
- ``parse(condition)`` — ``condition`` is a string, ``{and: [...]}``, ``{or: [...]}``,
  ``{not: c}`` or a list (AND). Returns an immutable ``Condition``; raises ``ConditionError``
  with a clear message on bad syntax.
- ``evaluate(condition, scope) -> bool`` — accepts the raw form or a parsed ``Condition``.
  Paths ``step.field.sub`` resolve into ``scope.steps`` (then variables, inputs, loop).
- ``step_references(condition) -> set[str]`` — the step names a condition reads (validation).
"""

from __future__ import annotations

from typing import Any

from elexirion_app.pipelines.scope import Scope


class Condition:
    """A parsed condition (an AST node)."""


def parse(condition: Any) -> Condition:
    raise NotImplementedError


def evaluate(condition: Any, scope: Scope) -> bool:
    raise NotImplementedError


def step_references(condition: Any) -> set[str]:
    raise NotImplementedError
