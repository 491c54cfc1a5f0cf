"""Reading the spec models: their keys (aliases included), tags, enum values and metadata.

CONTRACT:
- ``keys(model)``: the YAML keys of a model's fields, in declaration order (a field's alias
  when it has one: ``schema``, ``as``).
- ``own_keys(model, base)``: the keys a model adds to ``base`` or redeclares (a while_loop's
  ``condition``), without its tag field.
- ``required_keys(model)``, ``tag(model, key="type")`` (the one value of a ``Literal`` tag).
- ``literal_values(annotation)`` / ``field_values(model, key)``: every ``Literal`` value inside
  a type (through unions, lists and ``Annotated``), in order, without repeats.
- ``field_extra(model, key)`` / ``model_extra(model)``: the ``json_schema_extra`` metadata;
  ``is_ignored`` and ``is_deprecated`` read the spec's ``x-ignored`` / ``deprecated`` marks.

Used by ``pipelines/checks/tables.py`` (validation), ``spec/forms.py`` and ``spec/docs.py``.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

TAG = "type"


def _items(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    return [(info.alias or name, info) for name, info in model.model_fields.items()]


def keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The YAML keys of ``model``'s fields, in declaration order."""
    return tuple(key for key, _info in _items(model))


def field(model: type[BaseModel], key: str) -> FieldInfo:
    """The field written as ``key`` in YAML (its alias or its name)."""
    for item_key, info in _items(model):
        if item_key == key:
            return info
    raise KeyError(f"{model.__name__} has no field {key!r}")


def _declared_in(cls: type, name: str) -> bool:
    return name in inspect.get_annotations(cls)


def own_keys(model: type[BaseModel], base: type[BaseModel], tag: str = TAG) -> tuple[str, ...]:
    """Keys ``model`` adds to ``base`` or redeclares, in order, without the tag field."""
    between = [c for c in model.__mro__ if issubclass(c, base) and c is not base]
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key == tag:
            continue
        if name not in base.model_fields or any(_declared_in(c, name) for c in between):
            out.append(key)
    return tuple(out)


def required_keys(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(key for key, info in _items(model) if info.is_required())


def literal_values(annotation: Any) -> tuple[Any, ...]:
    """Every ``Literal`` value inside ``annotation``, in order, without repeats."""
    found: list[Any] = []
    stack = [annotation]
    while stack:
        current = stack.pop(0)
        if get_origin(current) is Literal:
            found.extend(v for v in get_args(current) if v not in found)
        else:
            stack[:0] = list(get_args(current))
    return tuple(found)


def field_values(model: type[BaseModel], key: str) -> tuple[str, ...]:
    """The ``Literal`` values a field accepts (the known values of an open enum)."""
    return tuple(str(v) for v in literal_values(field(model, key).annotation))


def tag(model: type[BaseModel], key: str = TAG) -> str:
    """The value of a model's tag field (``type: Literal["claude"]`` → ``claude``)."""
    values = field_values(model, key)
    if len(values) != 1:
        raise ValueError(f"{model.__name__}.{key} is not a one-value Literal tag")
    return values[0]


def field_extra(model: type[BaseModel], key: str) -> dict[str, Any]:
    extra = field(model, key).json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def model_extra(model: type[BaseModel]) -> dict[str, Any]:
    extra = model.model_config.get("json_schema_extra")
    return dict(extra) if isinstance(extra, dict) else {}


def is_ignored(model: type[BaseModel], key: str) -> bool:
    return bool(field_extra(model, key).get("x-ignored"))


def is_deprecated(model: type[BaseModel], key: str) -> bool:
    return bool(field_extra(model, key).get("deprecated"))


def is_test_only(model: type[BaseModel]) -> bool:
    return bool(model_extra(model).get("x-test-only"))
