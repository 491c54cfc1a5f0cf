"""Data steps: set_variable, data sources (for_loop/data_transform/join), data_transform
operations, file_ops.

CONTRACT:
- ``check_data_source(ctx, source, path, *, strict_missing)``: a ``data_source`` /
  ``input_source`` names an earlier step (and a field its result has), a variable, an input, a
  ``context:`` key, a template or a literal list; ``strict_missing`` makes a missing
  ``previous_response`` step an error instead of a warning.
- ``check_set_variable``, ``check_data_transform``, ``check_file_ops``: the per-type checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from elexirion_app.pipelines.checks.context import (
    Ctx,
    StepInfo,
    check_enum,
    kind_of,
    nearest,
    templated,
)
from elexirion_app.pipelines.checks.paths import check_relative
from elexirion_app.pipelines.checks.references import (
    check_condition,
    check_step_ref,
    check_template_text,
)
from elexirion_app.pipelines.checks.tables import (
    AGGREGATE_FUNCTIONS,
    CONVERT_FORMATS,
    FILE_OPS,
    MAP_EXPRESSIONS,
    SET_SCOPES,
    SET_VARIABLE_RESULT,
    SORT_ORDERS,
    TRANSFORM_OPS,
)


def check_set_variable(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    variables = step.get("variables")
    if variables is None and "variable" in step:
        ctx.warn(
            (*path, "variable"),
            "'variable'/'value' is not pipeline_ex's set_variable form",
            f"write variables: {{{step.get('variable')}: ...}}",
        )
    elif not templated(variables) and (not isinstance(variables, dict) or not variables):
        ctx.add(path, "set_variable needs a non-empty 'variables' map", "variables: {name: value}")
    check_enum(ctx, step, "scope", SET_SCOPES, path)


def _split_source(text: str) -> tuple[bool, str, str]:
    """``previous_response:step[:a.b|.a.b]`` → (prefixed, step, path)."""
    prefixed = text.startswith("previous_response")
    rest = text[len("previous_response") :].lstrip(":.") if prefixed else text
    m = re.match(r"([A-Za-z0-9_\-]+)[:.]?(.*)$", rest)
    if not m:
        return prefixed, "", ""
    return prefixed, m.group(1), m.group(2)


def check_data_source(
    ctx: Ctx, source: Any, path: tuple[Any, ...], *, strict_missing: bool
) -> None:
    """A for_loop ``data_source`` / data_transform ``input_source``."""
    if not isinstance(source, str):
        if not isinstance(source, (list, dict)):
            ctx.add(path, f"the data source must be text or a list, not {kind_of(source)}")
        return
    if "{{" in source:
        check_template_text(ctx, source, path)
        return
    if source.startswith("context:"):
        return
    prefixed, name, field_path = _split_source(source.strip())
    if not name:
        if not prefixed or not ctx.earlier:
            ctx.add(path, f"the data source {source!r} names nothing")
        return
    if name in ctx.earlier:
        _check_source_field(ctx, ctx.earlier[name], field_path, path)
        return
    if name in ctx.output_fields:
        owner = ctx.output_fields[name]
        ctx.warn(
            path,
            f"'{name}' is the output_field of step '{owner}', not a step",
            f"write previous_response:{owner}:{name}{'.' + field_path if field_path else ''}",
        )
        return
    if not prefixed and (name in ctx.variables or name in ctx.iterators or name in ctx.global_vars):
        return
    if name in ctx.later or prefixed:
        if strict_missing or name in ctx.later:
            check_step_ref(ctx, name, path, f"data source {source!r}")
        else:
            ctx.warn(
                path,
                f"data source {source!r}: '{name}' is not an earlier step (fails at run time)",
                nearest(name, ctx.earlier),
            )
        return
    ctx.warn(
        path,
        f"data source {source!r}: '{name}' is not an earlier step or variable; it will be "
        f"read from run inputs (--input {name}=...)",
        nearest(name, [*ctx.earlier, *ctx.variables]),
    )


def _check_source_field(ctx: Ctx, info: StepInfo, field_path: str, path: tuple[Any, ...]) -> None:
    if not field_path or info.type != "set_variable":
        return
    head = re.split(r"[.:]", field_path, maxsplit=1)[0]
    if head in SET_VARIABLE_RESULT:
        return
    key = path[-1] if path else "data_source"
    ctx.add(
        path,
        f"step '{info.name}' is a set_variable step: its result has "
        f"{', '.join(SET_VARIABLE_RESULT)}, no '{head}' (nothing to read there)",
        f"to read the variable write {key}: {head}",
    )


def check_data_transform(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    source = step.get("input_source")
    if source is None:
        ctx.add(path, "a data_transform needs an 'input_source'")
    else:
        check_data_source(ctx, source, (*path, "input_source"), strict_missing=False)
    ops = step.get("operations")
    opath = (*path, "operations")
    if ops is None or ops == []:
        ctx.warn(opath if ops is not None else path, "no operations: the input passes unchanged")
        return
    if templated(ops):
        return
    if not isinstance(ops, list):
        ctx.add(opath, "operations must be a list")
        return
    for k, op in enumerate(ops):
        _check_operation(ctx, op, (*opath, k))


def _check_operation(ctx: Ctx, op: Any, path: tuple[Any, ...]) -> None:
    if not isinstance(op, dict):
        ctx.add(path, "an operation must be a map with 'operation'")
        return
    name = op.get("operation")
    if not isinstance(name, str) or name not in TRANSFORM_OPS:
        ctx.add(
            (*path, "operation"),
            f"unknown data_transform operation {name!r}",
            nearest(str(name), TRANSFORM_OPS),
        )
        return
    for key in TRANSFORM_OPS[name]:
        if op.get(key) is None:
            ctx.add(path, f"a {name} operation needs '{key}'")
    if name == "filter" and op.get("condition") is not None:
        check_condition(ctx, op["condition"], (*path, "condition"), item_relative=True)
    if name == "aggregate":
        check_enum(ctx, op, "function", AGGREGATE_FUNCTIONS, path)
    if name == "sort":
        check_enum(ctx, op, "order", SORT_ORDERS, path)
    if name == "map" and "mapping" not in op and "expression" not in op:
        ctx.add(path, "a map operation needs 'mapping' or 'expression'")
    if name == "map" and "expression" in op:
        check_enum(ctx, op, "expression", MAP_EXPRESSIONS, path)
    if name == "join" and isinstance(op.get("right_source"), str):
        check_data_source(ctx, op["right_source"], (*path, "right_source"), strict_missing=False)


def check_file_ops(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    op = step.get("operation")
    if not isinstance(op, str) or op not in FILE_OPS:
        ctx.add(
            (*path, "operation") if op is not None else path,
            f"unknown file_ops operation {op!r}"
            if op is not None
            else "file_ops needs an 'operation'",
            nearest(str(op), FILE_OPS) if op is not None else "one of: " + ", ".join(FILE_OPS),
        )
    else:
        for key in FILE_OPS[op]:
            if step.get(key) is None:
                ctx.add(path, f"file_ops {op} needs '{key}'")
        if op == "convert":
            check_enum(ctx, step, "format", CONVERT_FORMATS, path)
    for key in ("source", "destination", "path"):
        if isinstance(step.get(key), str):
            check_relative(ctx, step[key], (*path, key))
    files = step.get("files")
    if templated(files):
        return
    if isinstance(files, list):
        for k, item in enumerate(files):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                check_relative(ctx, item["path"], (*path, "files", k, "path"))
            elif not isinstance(item, (dict, str)):
                ctx.add((*path, "files", k), "a files entry must be a map with 'path'")
    elif files is not None:
        ctx.add((*path, "files"), "files must be a list")
