"""data_transform operations and file_ops (with workspace confinement)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from tests.unit.pipelines.engine_fakes import CountingProvider, doc

ORDERS = [
    {"id": 1, "user_id": 10, "total": 250, "status": "completed"},
    {"id": 2, "user_id": 11, "total": 80, "status": "completed"},
    {"id": 3, "user_id": 10, "total": 400, "status": "pending"},
    {"id": 4, "user_id": 12, "total": 150, "status": "completed"},
]
USERS = [
    {"id": 10, "name": "Ann", "tier": "gold"},
    {"id": 11, "name": "Bob", "tier": "silver"},
    {"id": 12, "name": "Cy", "tier": "gold"},
]


async def run(yaml_text: str, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    kwargs.setdefault("provider_for", CountingProvider())
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    return await run_pipeline(
        doc(yaml_text, base_dir=tmp_path),
        inputs=kwargs.pop("inputs", {}),
        workspace=ws,
        output_dir=tmp_path / "out",
        **kwargs,
    )


async def test_data_transform_pipeline_of_operations(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: dt
  steps:
    - name: data
      type: set_variable
      variables:
        orders: "{{inputs.orders}}"
        users: "{{inputs.users}}"
    - name: high
      type: data_transform
      input_source: "previous_response:data.variables_set.orders"
      operations:
        - {operation: filter, field: status, condition: "status == 'completed'"}
        - {operation: filter, field: total, condition: "total > 100"}
        - {operation: sort, field: total, order: desc}
      output_field: high_value
    - name: joined
      type: data_transform
      input_source: "previous_response:high"
      operations:
        - operation: join
          left_field: user_id
          right_source: "data:variables_set.users"
          join_key: id
        - {operation: map, field: tier, mapping: {gold: GOLD}}
        - {operation: map, field: name, expression: lowercase}
      output_field: enriched
    - name: grouped
      type: data_transform
      input_source: "previous_response:joined"
      operations:
        - {operation: group_by, field: tier}
      output_field: by_tier
    - name: avg
      type: data_transform
      input_source: "previous_response:by_tier.GOLD"
      operations:
        - {operation: aggregate, field: total, function: average}
      output_field: gold_avg
    - name: uniq
      type: data_transform
      input_source: "context:orders"
      operations:
        - {operation: aggregate, field: status, function: unique}
"""
    outcome = await run(yaml_text, tmp_path, inputs={"orders": ORDERS, "users": USERS})
    assert outcome.status == "succeeded", outcome.error
    high = outcome.steps["high"]["high_value"]
    assert [o["id"] for o in high] == [1, 4]
    assert outcome.steps["high"]["metadata"]["input_count"] == 4
    enriched = outcome.steps["joined"]["enriched"]
    assert enriched[0]["name"] == "ann" and enriched[0]["tier"] == "GOLD"
    assert enriched[0]["id"] == 1  # the left side keeps its own id
    assert list(outcome.steps["grouped"]["by_tier"]) == ["GOLD"]
    assert outcome.steps["avg"]["gold_avg"] == 200
    assert outcome.steps["uniq"]["result"] == ["completed", "pending"]


@pytest.mark.parametrize(
    ("function", "expected"),
    [("sum", 880), ("count", 4), ("max", 400), ("min", 80), ("first", 250), ("last", 150)],
)
async def test_aggregates(tmp_path: Path, function: str, expected: Any) -> None:
    yaml_text = f"""
workflow:
  name: agg
  steps:
    - name: a
      type: data_transform
      input_source: "context:orders"
      operations:
        - {{operation: aggregate, field: total, function: {function}}}
"""
    outcome = await run(yaml_text, tmp_path, inputs={"orders": ORDERS})
    assert outcome.steps["a"]["result"] == expected


async def test_missing_input_gives_empty_data_with_warning(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: empty
  steps:
    - name: g
      type: gemini
      prompt: [{type: static, content: "hello"}]
    - name: t
      type: data_transform
      input_source: "previous_response:g.orders"
      operations:
        - {operation: filter, field: status, condition: "status == 'x'"}
"""
    outcome = await run(yaml_text, tmp_path)
    assert outcome.steps["t"]["result"] == []
    assert outcome.steps["t"]["metadata"]["warnings"]


FILE_OPS = """
workflow:
  name: files
  steps:
    - name: op
      type: file_ops
      operation: OPERATION
"""


async def file_op(tmp_path: Path, operation: str, **fields: Any) -> RunOutcome:
    """Fields come in as run inputs, so path checks happen at run time (not validation)."""
    extra = "".join(
        f"      {k}: {json.dumps(v)}\n"
        if isinstance(v, list)
        else f'      {k}: "{{{{inputs.{k}}}}}"\n'
        for k, v in fields.items()
    )
    return await run(FILE_OPS.replace("OPERATION", operation) + extra, tmp_path, inputs=fields)


async def test_file_ops_copy_move_list_delete_validate_convert(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("hello")
    (ws / "data.csv").write_text("name,age\nann,30\nbob,40\n")
    (ws / "conf.yaml").write_text("a: 1\nb: [1, 2]\n")

    out = await file_op(tmp_path, "copy", source="a.txt", destination="copies/b.txt")
    assert out.status == "succeeded" and (ws / "copies" / "b.txt").read_text() == "hello"
    out = await file_op(tmp_path, "move", source="copies/b.txt", destination="c.txt")
    assert (ws / "c.txt").exists() and not (ws / "copies" / "b.txt").exists()
    out = await file_op(tmp_path, "list", path=".", pattern="*.txt")
    assert out.steps["op"]["files"] == ["a.txt", "c.txt"]
    out = await file_op(tmp_path, "delete", path="c.txt")
    assert out.steps["op"]["deleted"] is True and not (ws / "c.txt").exists()
    out = await file_op(
        tmp_path, "validate", files=[{"path": "a.txt", "must_be_file": True, "min_size": 1}]
    )
    assert out.steps["op"]["all_valid"] is True
    out = await file_op(tmp_path, "validate", files=[{"path": "nope.txt"}])
    assert out.status == "failed" and "nope.txt does not exist" in (out.error or "")
    out = await file_op(
        tmp_path, "convert", source="data.csv", destination="data.json", format="csv_to_json"
    )
    assert json.loads((ws / "data.json").read_text()) == [
        {"name": "ann", "age": "30"},
        {"name": "bob", "age": "40"},
    ]
    out = await file_op(
        tmp_path, "convert", source="data.json", destination="back.csv", format="json_to_csv"
    )
    assert (ws / "back.csv").read_text() == "name,age\nann,30\nbob,40\n"
    out = await file_op(
        tmp_path, "convert", source="conf.yaml", destination="conf.json", format="yaml_to_json"
    )
    assert json.loads((ws / "conf.json").read_text()) == {"a": 1, "b": [1, 2]}


async def test_file_ops_refuse_paths_outside_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (ws / "a.txt").write_text("hello")
    os.symlink(outside, ws / "link")
    cases = [
        ("copy", {"source": "../outside/secret.txt", "destination": "x.txt"}),
        ("copy", {"source": str(outside / "secret.txt"), "destination": "x.txt"}),
        ("copy", {"source": "link/secret.txt", "destination": "x.txt"}),
        ("copy", {"source": "a.txt", "destination": "../outside/a.txt"}),
        ("move", {"source": "a.txt", "destination": "link/a.txt"}),
        ("delete", {"path": "../outside/secret.txt"}),
        ("delete", {"path": "link/secret.txt"}),
        ("list", {"path": "link"}),
        ("list", {"path": ".", "pattern": "../*"}),
        (
            "convert",
            {"source": "link/secret.txt", "destination": "y.json", "format": "yaml_to_json"},
        ),
    ]
    for operation, fields in cases:
        out = await file_op(tmp_path, operation, **fields)
        assert out.status == "failed", (operation, fields)
        assert "outside the workspace" in (out.error or "") or "leaves the workspace" in (
            out.error or ""
        ), out.error
    assert (outside / "secret.txt").read_text() == "secret"
    assert not (outside / "a.txt").exists()
    assert (ws / "a.txt").exists()
    listed = await file_op(tmp_path, "list", path=".", pattern="**/*", recursive=True)
    assert "link/secret.txt" not in listed.steps["op"]["files"]


async def test_file_ops_list_with_min_count_fails_when_too_few_files_match(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    out = await file_op(tmp_path, "list", path=".", pattern="**/*.py", min_count=1)
    assert out.status == "failed"
    assert "no file matches '**/*.py'" in (out.error or "")
    assert "upload the files to your workspace first" in (out.error or "")
    (ws / "app.py").write_text("x = 1\n")
    out = await file_op(tmp_path, "list", path=".", pattern="**/*.py", min_count=2)
    assert out.status == "failed" and "only 1 files match" in (out.error or "")
    out = await file_op(tmp_path, "list", path=".", pattern="**/*.py", min_count=1)
    assert out.status == "succeeded" and out.steps["op"]["count"] == 1
    out = await file_op(tmp_path, "list", path=".", pattern="*.py", min_count="many")
    assert out.status == "failed" and "min_count must be a whole number" in (out.error or "")
