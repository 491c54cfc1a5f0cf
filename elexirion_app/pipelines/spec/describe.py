"""Saying in words which values a spec field takes ("text, a number or a `{{ }}` template").

CONTRACT:
- ``members(annotation) -> (members, optional, templated)``: the alternatives of a field's type
  without ``None`` and ``{{ }}`` templates (``Annotated`` unwrapped, unions flattened), and
  whether it may be null or a template.
- ``describe(annotation, *, markdown=False, model_name=...) -> str``: a short phrase for the
  values; ``model_name`` names a nested model (default "a map"; the docs link to its section).
  Used by the generated docs and by validation's messages about values that do not fit.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

from elexirion_app.pipelines.spec.base import SpecModel, TemplateStr


def members(annotation: Any) -> tuple[list[Any], bool, bool]:
    """(alternatives without None/templates, may be None, may be a template)."""
    found: list[Any] = []
    optional = templated = False
    stack = [annotation]
    while stack:
        current = stack.pop(0)
        if get_origin(current) in (Union, types.UnionType):
            stack[:0] = list(get_args(current))
        elif current is type(None):
            optional = True
        elif current == TemplateStr:
            templated = True
        elif hasattr(current, "__metadata__"):  # Annotated[...]
            stack.insert(0, get_args(current)[0])
        else:
            found.append(current)
    return found, optional, templated


def _a_map(_model: type[SpecModel]) -> str:
    return "a map"


def describe(
    annotation: Any,
    *,
    markdown: bool = False,
    model_name: Callable[[type[SpecModel]], str] = _a_map,
) -> str:
    """A short phrase for the values ``annotation`` accepts."""
    found, _optional, templated = members(annotation)
    code = (lambda v: f"`{v}`") if markdown else str
    words: list[str] = []
    literals = [v for m in found if get_origin(m) is Literal for v in get_args(m)]
    if literals:
        words.append("one of " + ", ".join(code(v) for v in literals))
    for member in found:
        if get_origin(member) is not Literal:
            words.append(_one(member, markdown, model_name))
    if templated:
        words.append(f"a {code('{{ }}')} template")
    if "a whole number" in words and "a number" in words:
        words.remove("a whole number")
    return _join(list(dict.fromkeys(words)))


def _one(member: Any, markdown: bool, model_name: Callable[[type[SpecModel]], str]) -> str:
    simple = {str: "text", bool: "true/false", int: "a whole number", float: "a number"}
    if member in simple:
        return simple[member]
    if member is Any:
        return "any value"
    if isinstance(member, type) and issubclass(member, SpecModel):
        return model_name(member)
    origin, args = get_origin(member), get_args(member)
    if origin is list:
        inner = describe(args[0], markdown=markdown, model_name=model_name) if args else ""
        if inner in ("", "any value"):
            return "a list"
        return f"a list of ({inner})" if " or " in inner else f"a list of {inner}"
    if origin is dict:
        inner = describe(args[1], markdown=markdown, model_name=model_name) if args else ""
        if inner in ("", "any value"):
            return "a map"
        return f"a map of name: ({inner})" if " or " in inner else f"a map of name: {inner}"
    return "a value"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return words[0] if words else "any value"
    return ", ".join(words[:-1]) + " or " + words[-1]
