"""``python -m elexirion_app generate``: the chat's repair loop from the command line, a
progress display, the YAML written only once valid (issue 9 item 3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from elexirion_app import cli
from elexirion_app.pipelines.loader import load_file
from elexirion_app.pipelines.validate import validate_document
from tests.unit.agent.test_genesis import MISSING_STEP, VALID, ScriptedProvider, _fenced

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _ledger(db_url: str) -> None:
    """The CLI's genesis calls are booked in the ledger: a scratch database for them."""


def _use(monkeypatch: pytest.MonkeyPatch, provider: ScriptedProvider) -> None:
    from elexirion_app.providers import choice

    monkeypatch.setattr(choice, "chat_provider", lambda *a, **k: provider)


def test_a_repaired_answer_is_written_after_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = ScriptedProvider(_fenced(MISSING_STEP), _fenced(VALID))
    _use(monkeypatch, provider)
    out = tmp_path / "notes.yaml"
    assert cli.main(["generate", "release notes from a changelog", "--out", str(out)]) == 0
    assert out.read_text() == VALID
    assert len(provider.requests) == 2
    err = capsys.readouterr().err
    assert "repair 1 problem(s) (attempt 2/3)" in err and "valid after 2 answer(s)" in err
    assert not [p for p in validate_document(load_file(out)) if p.severity == "error"]


def test_a_model_that_never_gets_it_right_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(monkeypatch, ScriptedProvider(_fenced(MISSING_STEP), repeat_last=True))
    out = tmp_path / "bad.yaml"
    assert cli.main(["generate", "release notes", "--out", str(out), "--tries", "2"]) == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "refers to a step 'summary'" in err and "nothing was written" in err


def test_an_existing_file_is_kept_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, ScriptedProvider(_fenced(VALID), _fenced(VALID)))
    out = tmp_path / "keep.yaml"
    out.write_text("mine\n")
    assert cli.main(["generate", "notes", "--out", str(out)]) == 1
    assert out.read_text() == "mine\n"
    assert cli.main(["generate", "notes", "--out", str(out), "--force", "--no-progress"]) == 0
    assert out.read_text() == VALID


def test_offline_from_a_fresh_process_prints_valid_yaml_on_stdout(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ELEXIRION_DATA_DIR": str(tmp_path),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    done = subprocess.run(
        [sys.executable, "-m", "elexirion_app", "generate", "a pipeline that lints python"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("workflow:")
    assert "offline demo model" in done.stderr
    path = tmp_path / "out.yaml"
    path.write_text(done.stdout)
    assert not [p for p in validate_document(load_file(path)) if p.severity == "error"]
