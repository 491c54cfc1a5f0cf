"""What the repository itself promises: no package-registry address, test output git-ignored."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
