"""``python -m elexirion_app validate|run|resume``: output shape and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from elexirion_app.cli import main, parse_inputs
from elexirion_app.core.types import TOKEN_KINDS
from elexirion_app.db.engine import get_engine
from elexirion_app.db.models import Run

ROOT = Path(__file__).resolve().parents[3]
GOOD = """
workflow:
  name: cli_demo
  inputs:
    - name: topic
      required: true
  steps:
    - name: first
      type: claude
      prompt: [{type: static, content: "simple test"}]
    - name: second
      type: gemini
      prompt: [{type: static, content: "{{inputs.topic}}: make a plan"}]
      output_to_file: second.json
"""
BAD = """
workflow:
  name: broken
  steps:
    - name: a
      type: no_such_type
    - name: b
      type: claude
      prompt: [{type: previous_response, step: missing}]
"""
FAILING = """
workflow:
  name: failing
  steps:
    - name: a
      type: gemini
      prompt: [{type: static, content: "This will fail"}]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = write(tmp_path, "good.yaml", GOOD), write(tmp_path, "bad.yaml", BAD)
    assert main(["validate", str(good)]) == 0
    assert "good.yaml: ok" in capsys.readouterr().out
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:6" in out and "no_such_type" in out
    assert "missing" in out and "bad.yaml: INVALID (2 error(s)" in out


def test_run_json_prints_one_object(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    argv = ["run", str(path), "--input", "topic=cats", "--json", "--workspace", str(tmp_path)]
    code = main([*argv, "--output-dir", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)  # exactly one JSON document
    assert set(data) == {"run_id", "status", "error", "steps", "cost_usd", "tokens"}
    assert data["status"] == "succeeded" and data["error"] is None
    assert data["steps"]["first"]["text"] == "Mock response for simple test"
    assert data["cost_usd"] == 0.0  # the offline model is free
    assert set(data["tokens"]) == set(TOKEN_KINDS)  # incl. cache_write_1h
    assert "• first [offline-demo]: Mock response for simple test" in captured.err
    assert (tmp_path / "out" / "second.json").exists()
    with Session(get_engine(db_url)) as s:
        run = s.get(Run, data["run_id"])
        assert run is not None and run.status == "succeeded"
        assert run.pipeline_path == str(path.resolve())


def test_run_exit_codes_and_messages(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = write(tmp_path, "failing.yaml", FAILING)
    assert main(["run", str(failing), "--json", "--workspace", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "failed"
    assert "• a" in captured.err and "FAILED" in captured.err

    bad = write(tmp_path, "bad.yaml", BAD)
    assert main(["run", str(bad), "--json"]) == 1
    captured = capsys.readouterr()
    assert "no_such_type" in captured.err
    assert json.loads(captured.out)["status"] == "failed"  # --json: still one object
    with Session(get_engine(db_url)) as s:
        assert len(s.exec(select(Run)).all()) == 1  # the invalid file never ran

    good = write(tmp_path, "good.yaml", GOOD)
    assert main(["run", str(good), "--no-records", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "missing required input(s): topic" in err and "Traceback" not in err

    assert main(["run", str(tmp_path / "nope.yaml")]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_resume_command(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = write(tmp_path, "failing.yaml", FAILING)
    assert main(["run", str(failing), "--json", "--workspace", str(tmp_path)]) == 1
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    failing.write_text(FAILING.replace("This will fail", "fine"))  # the stored YAML is used
    assert main(["resume", run_id, "--json", "--workspace", str(tmp_path)]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "failed"
    with Session(get_engine(db_url)) as s:
        run = s.get(Run, run_id)
        assert run is not None
        run.pipeline_yaml = FAILING.replace("This will fail", "fine")
        s.add(run)
        s.commit()
    assert main(["resume", run_id, "--json", "--workspace", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == run_id
    assert main(["resume", run_id]) == 1
    assert "only interrupted or failed runs" in capsys.readouterr().err


def test_parse_inputs() -> None:
    assert parse_inputs(["a=1", "b=x=y", "c=[1, 2]", "d=true", "e=main.py"]) == {
        "a": 1,
        "b": "x=y",
        "c": [1, 2],
        "d": True,
        "e": "main.py",
    }


def test_module_entry_point(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("GEMINI_API_KEY", None)
    env.pop("GOOGLE_API_KEY", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "elexirion_app",
            "run",
            str(ROOT / "pipelines/examples/hello.yaml"),
            "--json",
            "--workspace",
            str(tmp_path),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "succeeded"


def test_run_from_file_checkpoint_is_explicit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = """
workflow:
  name: cp_cli
  checkpoint_enabled: true
  steps:
    - name: a
      type: claude
      prompt: [{type: static, content: "simple test"}]
    - name: b
      type: gemini
      prompt: [{type: static, content: "{{inputs.msg}}"}]
"""
    path = write(tmp_path, "cp.yaml", text)
    base = ["run", str(path), "--json", "--no-records", "--workspace", str(tmp_path)]
    assert main([*base, "--input", "msg=This will fail"]) == 1
    capsys.readouterr()
    assert (tmp_path / "checkpoints" / "cp_cli_latest.json").exists()
    # a plain re-run ignores the checkpoint (and succeeds, clearing it)
    assert main([*base, "--input", "msg=ok"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"]["a"]["latency_ms"] >= 0
    assert not (tmp_path / "checkpoints" / "cp_cli_latest.json").exists()
    assert main([*base, "--input", "msg=ok", "--from-checkpoint"]) == 1
    assert "no checkpoint found" in capsys.readouterr().err
    # an explicit resume reuses the finished step
    assert main([*base, "--input", "msg=This will fail"]) == 1
    capsys.readouterr()
    assert main([*base, "--input", "msg=ok", "--from-checkpoint"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["steps"]["a"]["text"] == "Mock response for simple test"
    assert data["steps"]["b"]["success"] is True
    assert data["cost_usd"] == 0.0  # offline; only "b" was called this time


def test_run_json_still_prints_one_object_when_the_file_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workflow:\n  name: x\n  steps: [\n")
    assert main(["run", str(bad), "--json", "--no-records"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "failed" and out["steps"] == {} and out["cost_usd"] == 0.0
    assert "invalid YAML" in out["error"] and out["problems"][0].startswith(str(bad))
