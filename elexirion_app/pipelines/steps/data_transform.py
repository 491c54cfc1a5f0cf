"""``data_transform``: filter / map / aggregate / join / group_by / sort over a list of maps."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from elexirion_app.core.errors import ConditionError, StepError
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.steps.util import MISSING, get_path, resolve_source, to_float

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

_COMPARISON = re.compile(r"^\s*([\w.]+)\s*(==|!=|>=|<=|>|<|contains)\s*(.+?)\s*$")
AGGREGATES = ("sum", "average", "count", "max", "min", "first", "last", "unique")


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "nil", "none"):
        return None
    number = to_float(text)
    if number is not None:
        return int(number) if number.is_integer() and "." not in text else number
    return text


def compare(left: Any, op: str, right: Any) -> bool:
    if op == "contains":
        if isinstance(left, str):
            return str(right) in left
        if isinstance(left, list | tuple | Mapping):
            return right in left
        return False
    if op in ("==", "!="):
        lf, rf = to_float(left), to_float(right)
        equal = (
            lf == rf
            if lf is not None and rf is not None and not isinstance(left, str)
            else (left == right or str(left) == str(right))
        )
        return equal if op == "==" else not equal
    lf, rf = to_float(left), to_float(right)
    if lf is None or rf is None:
        if left is None or right is None:
            return False
        ls, rs = str(left), str(right)
        return {">": ls > rs, "<": ls < rs, ">=": ls >= rs, "<=": ls <= rs}[op]
    return {">": lf > rf, "<": lf < rf, ">=": lf >= rf, "<=": lf <= rf}[op]


def item_matches(item: Any, field: str | None, condition: Any) -> bool:
    if isinstance(condition, str):
        match = _COMPARISON.match(condition)
        if match:
            path, op, raw = match.groups()
            value = get_path(item, path)
            if value is MISSING and field:
                value = get_path(item, field) if path == field else MISSING
            return compare(None if value is MISSING else value, op, _literal(raw))
        if field is not None:  # "== 'x'" style with the field given apart
            m2 = re.match(r"^\s*(==|!=|>=|<=|>|<|contains)\s*(.+)$", condition)
            if m2:
                value = get_path(item, field)
                return compare(
                    None if value is MISSING else value, m2.group(1), _literal(m2.group(2))
                )
        return _general(item, condition)
    if isinstance(condition, Mapping | list):
        return _general(item, condition)
    if isinstance(condition, bool):
        return condition
    if field is not None:
        value = get_path(item, field)
        return value is not MISSING and value == condition
    return bool(condition)


def _general(item: Any, condition: Any) -> bool:
    """Any other condition: the full condition grammar with the item's fields as variables."""
    from elexirion_app.pipelines.conditions import evaluate

    fields = dict(item) if isinstance(item, Mapping) else {"item": item}
    return evaluate(condition, Scope(variables=fields, loop={"item": item}))


def _filter(data: list[Any], op: Mapping[str, Any]) -> list[Any]:
    return [x for x in data if item_matches(x, op.get("field"), op.get("condition"))]


def _map(data: list[Any], op: Mapping[str, Any]) -> list[Any]:
    field = str(op.get("field", ""))
    mapping = op.get("mapping")
    expression = str(op.get("expression") or "").lower()
    out = []
    for item in data:
        if not isinstance(item, Mapping):
            out.append(item)
            continue
        new = dict(item)
        value = new.get(field)
        if isinstance(mapping, Mapping):
            key = value if value in mapping else str(value)
            new[field] = mapping.get(key, value)
        elif expression in ("uppercase", "upper") and isinstance(value, str):
            new[field] = value.upper()
        elif expression in ("lowercase", "lower") and isinstance(value, str):
            new[field] = value.lower()
        elif expression:
            raise StepError("map", f"unknown map expression {expression!r}")
        out.append(new)
    return out


def aggregate(data: list[Any], field: str | None, function: str) -> Any:
    values = [get_path(x, field) if field else x for x in data]
    values = [v for v in values if v is not MISSING]
    if function == "count":
        return len(values)
    if function == "first":
        return values[0] if values else None
    if function == "last":
        return values[-1] if values else None
    if function == "unique":
        return list({repr(v): v for v in values}.values())
    numbers = [n for n in (to_float(v) for v in values) if n is not None]
    if function == "sum":
        return sum(numbers)
    if function == "average":
        return sum(numbers) / len(numbers) if numbers else 0
    if function == "max":
        return max(numbers) if numbers else None
    if function == "min":
        return min(numbers) if numbers else None
    raise StepError("aggregate", f"unknown aggregate function {function!r}")


def _join(data: list[Any], op: Mapping[str, Any], scope: Scope) -> list[Any]:
    right = resolve_source(op.get("right_source"), scope)
    right_items = right if isinstance(right, list) else []
    left_field = str(op.get("left_field", "id"))
    key = str(op.get("join_key") or op.get("right_field") or "id")
    index: dict[str, Mapping[str, Any]] = {}
    for r in right_items:
        if isinstance(r, Mapping) and key in r:
            index.setdefault(str(r[key]), r)
    out = []
    for item in data:
        if not isinstance(item, Mapping):
            continue
        match = index.get(str(item.get(left_field)))
        merged = dict(item)
        if match is not None:
            for k, v in match.items():
                merged.setdefault(k, v)
        out.append(merged)
    return out


def _group_by(data: list[Any], field: str) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for item in data:
        value = get_path(item, field)
        groups.setdefault("nil" if value is MISSING or value is None else str(value), []).append(
            item
        )
    return groups


def _sort(data: list[Any], op: Mapping[str, Any]) -> list[Any]:
    field = op.get("field")
    reverse = str(op.get("order") or "asc").lower() in ("desc", "descending")

    def key(item: Any) -> tuple[int, Any]:
        value = get_path(item, field) if field else item
        if value is MISSING or value is None:
            return (1, 0) if not reverse else (-1, 0)
        number = to_float(value) if not isinstance(value, str) else None
        return (0, number) if number is not None else (0, str(value))

    try:
        return sorted(data, key=key, reverse=reverse)
    except TypeError:  # mixed numbers and strings
        return sorted(data, key=lambda x: str(key(x)[1]), reverse=reverse)


def apply_operation(data: Any, op: Mapping[str, Any], scope: Scope) -> Any:
    kind = str(op.get("operation") or op.get("type") or "")
    if kind == "aggregate":
        return aggregate(_as_list(data), op.get("field"), str(op.get("function") or "count"))
    if kind == "group_by":
        return _group_by(_as_list(data), str(op.get("field", "")))
    if isinstance(data, Mapping) and kind in ("filter", "map", "sort", "join"):
        data = [data]
    items = _as_list(data)
    if kind == "filter":
        return _filter(items, op)
    if kind == "map":
        return _map(items, op)
    if kind == "join":
        return _join(items, op, scope)
    if kind == "sort":
        return _sort(items, op)
    raise StepError("data_transform", f"unknown operation {kind!r}")


def _as_list(data: Any) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, tuple):
        return list(data)
    if isinstance(data, Mapping):
        if data and all(isinstance(v, list) for v in data.values()):
            return [x for v in data.values() for x in v]
        return [data]
    return [data]


async def run_data_transform(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    source = step.get("input_source")
    data = resolve_source(source, scope) if source is not None else step.get("data")
    warnings = []
    if data is MISSING or data is None:
        warnings.append(f"input_source {source!r} resolved to nothing; using an empty list")
        data = []
    input_count = len(data) if isinstance(data, list | dict) else 1
    for op in step.get("operations") or []:
        if not isinstance(op, Mapping):
            raise StepError(name, f"operation {op!r} is not a map")
        try:
            data = apply_operation(data, op, scope)
        except (StepError, ConditionError) as exc:
            raise StepError(name, exc.message) from exc
    output_field = str(step.get("output_field") or "result")
    metadata: dict[str, Any] = {
        "output_field": output_field,
        "input_count": input_count,
        "output_count": len(data) if isinstance(data, list | dict) else 1,
        "operations": len(step.get("operations") or []),
    }
    if warnings:
        metadata["warnings"] = warnings
    return {"success": True, output_field: data, "metadata": metadata}
