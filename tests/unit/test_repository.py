"""What the repository itself promises: no package-registry address, test output git-ignored."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Split so that this file does not match its own search.
REGISTRY_SETTINGS = (
    "registry." + "npmjs",
    "NPM_CONFIG_" + "REGISTRY",
    "index" + "-url",
    "PIP_" + "INDEX",
)

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )


def test_no_tracked_file_sets_a_package_registry() -> None:
    args = ["grep", "-n", "-I"]
    for pattern in REGISTRY_SETTINGS:
        args += ["-e", pattern]
    found = _git(*args)
    assert found.returncode == 1, f"registry settings in tracked files:\n{found.stdout}"


@pytest.mark.parametrize(
    "path",
    [
        "data/app.db",
        "screenshots/chat.png",
        "test-results/trace.zip",
        ".hypothesis/examples/x",
        ".pytest_cache/v/cache/lastfailed",
        ".web/package.json",
        ".states/x",
        ".tools/node_modules/.bin/bun",
        "checkpoints/run_latest.json",
        "outputs/report.md",
        "elexirion.db-wal",
        "uploaded_files/upload.txt",
        "frontend.zip",
    ],
)
def test_files_the_tests_and_builds_create_are_ignored(path: str) -> None:
    assert _git("check-ignore", "-q", "--no-index", path).returncode == 0, path


# --- .ci/run --------------------------------------------------------------------------------


def _ci_checkout(tmp_path: Path) -> Path:
    """A throw-away git repository holding this checkout's ``.ci/run``, committed."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", repo / ".ci" / "run")
    (repo / "tracked.txt").write_text("v1\n")
    (repo / ".gitignore").write_text("ignored/\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )
    return repo


def _ci_run(repo: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in {"CI", "ELEXIRION_REQUIRE_CONFORMANCE"}}
    full.update(env, CI_TEST_COMMAND=command)
    return subprocess.run(
        [str(repo / ".ci" / "run")],
        cwd=repo,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_ci_run_passes_when_the_tests_leave_the_tree_clean(tmp_path: Path) -> None:
    repo = _ci_checkout(tmp_path)
    run = _ci_run(repo, "mkdir -p ignored && touch ignored/out")
    assert run.returncode == 0, run.stderr
    assert "changed the work tree" not in run.stderr


def test_ci_run_fails_and_names_what_the_tests_dirtied(tmp_path: Path) -> None:
    repo = _ci_checkout(tmp_path)
    run = _ci_run(repo, "echo v2 > tracked.txt && touch 'stray file.txt'")
    assert run.returncode == 1
    assert "the tests changed the work tree" in run.stderr
    assert "  tracked.txt\n" in run.stderr and "  stray file.txt\n" in run.stderr


def test_ci_run_catches_a_file_dirty_before_and_changed_again(tmp_path: Path) -> None:
    repo = _ci_checkout(tmp_path)
    (repo / "tracked.txt").write_text("local edit\n")
    (repo / "notes.txt").write_text("mine\n")
    clean = _ci_run(repo, "true")
    assert clean.returncode == 0, clean.stderr
    assert "not clean before the tests" in clean.stderr
    run = _ci_run(repo, "echo again >> tracked.txt")
    assert run.returncode == 1
    assert "  tracked.txt\n" in run.stderr and "notes.txt" not in run.stderr


def test_ci_run_keeps_the_test_commands_exit_code(tmp_path: Path) -> None:
    run = _ci_run(_ci_checkout(tmp_path), "exit 5")
    assert run.returncode == 5
    assert "FAILED (exit 5)" in run.stderr


def test_ci_run_requires_the_conformance_suite_on_ci(tmp_path: Path) -> None:
    repo = _ci_checkout(tmp_path)
    check = 'test "${ELEXIRION_REQUIRE_CONFORMANCE:-}" = 1'
    assert _ci_run(repo, check, CI="true").returncode == 0
    assert _ci_run(repo, check).returncode == 1


# --- documentation ------------------------------------------------------------------------

DOC = ROOT / "docs" / "pipeline-format.md"


def _documented(text: str, name: str) -> bool:
    return any(f"`{name}{end}" in text for end in ("`", ":", " "))


def test_readme_sends_nobody_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in readme
    assert "docs/pipeline-format.md" in readme


def test_the_format_doc_covers_every_step_type_and_field_the_validator_knows() -> None:
    from elexirion_app.pipelines import validate as v

    text = DOC.read_text(encoding="utf-8")
    for kind in v.STEP_TYPES:
        assert f"#### `{kind}`" in text or f"`{kind}`," in text or f"`{kind}`\n" in text, kind
    groups: dict[str, Any] = {
        **{f"{kind} step": keys for kind, keys in v.STEP_KEYS.items()},
        "workflow": v.TOP_KEYS | v.TOP_IGNORED,
        "defaults": v.DEFAULTS_KEYS,
        "claude_options": v.CLAUDE_OPTION_KEYS,
        "common step": v.COMMON_STEP_KEYS | v.IGNORED_STEP_KEYS,
        "prompt part types": v.PROMPT_PART_FIELDS,
        "prompt part": {k for req, opt in v.PROMPT_PART_FIELDS.values() for k in (*req, *opt)},
        "data_transform operations": v.TRANSFORM_OPS,
        "file_ops operations": v.FILE_OPS,
        "values": {
            *v.PRESETS,
            *v.POST_PROCESSING,
            *v.EXTRACTION_FORMATS,
            *v.AGGREGATE_FUNCTIONS,
            *v.CONVERT_FORMATS,
            *v.FALLBACK_ACTIONS,
            *v.BACKOFF,
            *v.SET_SCOPES,
        },
    }
    missing = {
        group: sorted(str(k) for k in keys if not _documented(text, str(k)))
        for group, keys in groups.items()
    }
    assert not {g: m for g, m in missing.items() if m}
    assert "## Where we deliberately differ from pipeline_ex" in text


def test_gitignore_has_every_line_reflex_would_add() -> None:
    """On a fresh checkout Reflex rewrites .gitignore unless each of its default lines is
    there verbatim (``.web`` is not ``.web/``); CI then finds the work tree changed."""
    from reflex_base.constants import GitIgnore

    lines = {ln.strip() for ln in (ROOT / ".gitignore").read_text().splitlines()}
    assert set(GitIgnore.DEFAULTS) <= lines


def test_reflex_lock_package_json_is_written_as_reflex_writes_it() -> None:
    """Reflex's build writes ``json.dumps(package_json)`` (one line) back into ``reflex.lock/``;
    a hand-formatted copy is rewritten by every build and dirties a fresh clone's work tree."""
    import json

    path = ROOT / "reflex.lock" / "package.json"
    text = path.read_text()
    assert text == json.dumps(json.loads(text)), (
        "reflex.lock/package.json is not in the build's format: write it with "
        "json.dumps(obj) (no indent, no trailing newline) or copy it from .web/ after a build"
    )
