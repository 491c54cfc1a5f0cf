"""``file_ops``: copy / move / delete / validate / list / convert, confined to the workspace.

Every path goes through ``core.paths.resolve_in_workspace``: ``..``, absolute paths and
symlinks pointing out of the workspace are refused with ``WorkspaceError``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from elexirion_app.core.errors import StepError, WorkspaceError
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.pipelines.scope import Scope

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

MAX_CONVERT_BYTES = 20_000_000
OPERATIONS = ("copy", "move", "delete", "validate", "list", "convert")
FORMATS = ("csv_to_json", "json_to_csv", "yaml_to_json")


def _rel(ctx: RunContext, path: Path) -> str:
    return str(path.relative_to(ctx.workspace.resolve())) or "."


def _inside(ctx: RunContext, raw: Any, name: str, field: str) -> Path:
    if not raw:
        raise StepError(name, f"file_ops needs '{field}'")
    return resolve_in_workspace(ctx.workspace, str(raw))


def _check_tree(ctx: RunContext, path: Path) -> None:
    """Refuse to copy a directory that contains symlinks pointing out of the workspace."""
    if not path.is_dir():
        return
    for child in path.rglob("*"):
        if child.is_symlink():
            resolve_in_workspace(ctx.workspace, str(child.relative_to(ctx.workspace.resolve())))


def _copy(ctx: RunContext, step: Mapping[str, Any], name: str, move: bool) -> dict[str, Any]:
    src = _inside(ctx, step.get("source"), name, "source")
    dst = _inside(ctx, step.get("destination"), name, "destination")
    if not src.exists():
        raise StepError(name, f"source {step.get('source')!r} does not exist")
    _check_tree(ctx, src)
    if dst.is_dir():
        dst = resolve_in_workspace(ctx.workspace, _rel(ctx, dst / src.name))
    dst.parent.mkdir(parents=True, exist_ok=True)
    if move:
        shutil.move(str(src), str(dst))
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=False, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)
    return {"source": _rel(ctx, src), "destination": _rel(ctx, dst)}


def _delete(ctx: RunContext, step: Mapping[str, Any], name: str) -> dict[str, Any]:
    target = _inside(ctx, step.get("path") or step.get("source"), name, "path")
    if target == ctx.workspace.resolve():
        raise WorkspaceError("refusing to delete the workspace itself")
    existed = target.exists()
    if target.is_dir():
        shutil.rmtree(target)
    elif existed:
        target.unlink()
    return {"path": _rel(ctx, target), "deleted": existed}


def _validate(ctx: RunContext, step: Mapping[str, Any], name: str) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    for spec in step.get("files") or []:
        if not isinstance(spec, Mapping):
            raise StepError(name, f"validate entry {spec!r} is not a map")
        path = _inside(ctx, spec.get("path"), name, "files[].path")
        errors = []
        exists = path.exists()
        if spec.get("must_exist", True) and not exists:
            errors.append("does not exist")
        if exists:
            if spec.get("must_be_file") and not path.is_file():
                errors.append("is not a file")
            if spec.get("must_be_dir") and not path.is_dir():
                errors.append("is not a directory")
            size = path.stat().st_size if path.is_file() else 0
            if spec.get("min_size") is not None and size < int(spec["min_size"]):
                errors.append(f"is smaller than {spec['min_size']} bytes")
            if spec.get("max_size") is not None and size > int(spec["max_size"]):
                errors.append(f"is larger than {spec['max_size']} bytes")
        checks.append({"path": str(spec.get("path")), "valid": not errors, "errors": errors})
    invalid = [c for c in checks if not c["valid"]]
    if invalid:
        detail = "; ".join(f"{c['path']} {', '.join(c['errors'])}" for c in invalid)
        raise StepError(name, f"validation failed: {detail}")
    return {"files": checks, "all_valid": True}


def _list(ctx: RunContext, step: Mapping[str, Any], name: str) -> dict[str, Any]:
    base = _inside(ctx, step.get("path") or ".", name, "path")
    pattern = str(step.get("pattern") or "*")
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise WorkspaceError(f"pattern {pattern!r} leaves the workspace")
    walker = base.rglob(pattern) if step.get("recursive") else base.glob(pattern)
    root = ctx.workspace.resolve()
    files = []
    for p in sorted(walker):
        resolved = p.resolve()
        if resolved != root and root not in resolved.parents:
            continue  # a symlink pointing out: not listed
        files.append(str(p.relative_to(root)))
    wanted = step.get("min_count")
    if wanted is not None:
        try:
            least = int(wanted)
        except (TypeError, ValueError):
            raise StepError(name, f"min_count must be a whole number, not {wanted!r}") from None
        if len(files) < least:
            where = _rel(ctx, base)
            found = f"only {len(files)} files match" if files else "no file matches"
            raise StepError(
                name,
                f"{found} {pattern!r} in {where!r} of the workspace (at least {least} needed):"
                " upload the files to your workspace first",
            )
    return {"path": _rel(ctx, base), "pattern": pattern, "files": files, "count": len(files)}


def _convert(ctx: RunContext, step: Mapping[str, Any], name: str) -> dict[str, Any]:
    fmt = str(step.get("format") or "")
    if fmt not in FORMATS:
        raise StepError(name, f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    src = _inside(ctx, step.get("source"), name, "source")
    dst = _inside(ctx, step.get("destination"), name, "destination")
    if not src.is_file():
        raise StepError(name, f"source {step.get('source')!r} is not a file")
    if src.stat().st_size > MAX_CONVERT_BYTES:
        raise StepError(name, "source file is too large to convert")
    text = src.read_text(encoding="utf-8")
    try:
        if fmt == "csv_to_json":
            rows: Any = list(csv.DictReader(io.StringIO(text)))
            out = json.dumps(rows, indent=2, ensure_ascii=False)
        elif fmt == "yaml_to_json":
            rows = yaml.safe_load(text)
            out = json.dumps(rows, indent=2, ensure_ascii=False, default=str)
        else:
            rows = json.loads(text)
            if isinstance(rows, Mapping):
                rows = [rows]
            if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
                raise StepError(name, "json_to_csv needs a list of objects")
            fields = list(dict.fromkeys(k for r in rows for k in r))
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: _cell(v) for k, v in r.items()})
            out = buf.getvalue()
    except (ValueError, yaml.YAMLError, csv.Error) as exc:
        raise StepError(name, f"cannot convert {step.get('source')!r}: {exc}") from exc
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(out, encoding="utf-8")
    count = len(rows) if isinstance(rows, list) else 1
    return {
        "source": _rel(ctx, src),
        "destination": _rel(ctx, dst),
        "format": fmt,
        "records": count,
    }


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


async def run_file_ops(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    operation = str(step.get("operation") or "")
    if operation in ("copy", "move"):
        detail = _copy(ctx, step, name, move=operation == "move")
    elif operation == "delete":
        detail = _delete(ctx, step, name)
    elif operation == "validate":
        detail = _validate(ctx, step, name)
    elif operation == "list":
        detail = _list(ctx, step, name)
    elif operation == "convert":
        detail = _convert(ctx, step, name)
    else:
        raise StepError(
            name, f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}"
        )
    return {"success": True, "operation": operation, **detail}
