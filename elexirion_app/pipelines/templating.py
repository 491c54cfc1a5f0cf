"""``{{ }}`` templates: our own small grammar, never Python ``eval``.

CONTRACT (implemented by the templating work; the executor codes against it):

- ``render(value, scope)`` — recursively interpolates every string inside ``value`` (str, list,
  dict; other types returned as is). A string that is exactly one ``{{ expr }}`` keeps the
  type of the value; otherwise values are stringified (maps/lists as JSON). Unresolved
  ``steps.``/``inputs.``/``global_vars.`` references stay verbatim; raises ``TemplateError``
  only on syntax errors.
- ``references(text)`` — the names a template string refers to, for validation: a list of
  ``Reference(root, path, raw)`` where ``root`` is ``steps``/``inputs``/``global_vars``/
  ``state``/``loop``/``builtin``/``function``/``bare``.
- ``check_syntax(text)`` — raises ``TemplateError`` with a clear message for bad syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elexirion_app.pipelines.scope import Scope


@dataclass(frozen=True)
class Reference:
    root: str
    path: tuple[str, ...]
    raw: str


def render(value: Any, scope: Scope) -> Any:
    raise NotImplementedError


def references(text: str) -> list[Reference]:
    raise NotImplementedError


def check_syntax(text: str) -> None:
    raise NotImplementedError
