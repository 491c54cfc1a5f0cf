"""Workspace confinement (``core.paths.resolve_in_workspace``): absolute paths inside the
workspace are accepted (pipeline_ex's ``CODE_FILE=/abs/path``); everything pointing out is not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from elexirion_app.core.errors import WorkspaceError
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.pipelines.executor import run_pipeline
from tests.unit.pipelines.engine_fakes import CountingProvider, doc


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    return root


def test_absolute_path_inside_the_workspace_is_accepted(ws: Path) -> None:
    absolute = str(ws / "src" / "app.py")
    assert resolve_in_workspace(ws, absolute) == (ws / "src" / "app.py").resolve()
    assert resolve_in_workspace(ws, absolute, must_exist=True) == resolve_in_workspace(
        ws, "src/app.py"
    )
    assert resolve_in_workspace(ws, str(ws)) == ws.resolve()
    # a detour that comes back inside is fine too
    assert resolve_in_workspace(ws, f"{ws}/../ws/src") == (ws / "src").resolve()


def test_absolute_path_through_a_symlinked_workspace_is_accepted(tmp_path: Path, ws: Path) -> None:
    alias = tmp_path / "alias"
    os.symlink(ws, alias)
    assert resolve_in_workspace(alias, str(ws / "src" / "app.py")).read_text() == "print('hi')\n"
    assert resolve_in_workspace(ws, str(alias / "src" / "app.py")).read_text() == "print('hi')\n"


@pytest.mark.parametrize("raw", ["/etc/passwd", "../secret.txt", "src/../../secret.txt"])
def test_paths_outside_are_refused_naming_the_workspace(ws: Path, raw: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        resolve_in_workspace(ws, raw)
    assert info.value.message == f"path {raw!r} is outside the workspace {ws.resolve()}"


def test_absolute_path_next_to_the_workspace_is_refused(tmp_path: Path, ws: Path) -> None:
    for raw in (str(tmp_path / "secret.txt"), str(tmp_path / "ws-other" / "x"), str(tmp_path)):
        with pytest.raises(WorkspaceError, match="outside the workspace"):
            resolve_in_workspace(ws, raw)


def test_symlink_pointing_out_is_refused_by_absolute_path_too(tmp_path: Path, ws: Path) -> None:
    os.symlink(tmp_path / "secret.txt", ws / "link.txt")
    os.symlink(tmp_path, ws / "outdir")
    for raw in ("link.txt", str(ws / "link.txt"), str(ws / "outdir" / "secret.txt")):
        with pytest.raises(WorkspaceError, match="outside the workspace"):
            resolve_in_workspace(ws, raw)


@pytest.mark.parametrize("raw", ["~", "~/secret.txt", "~root/.ssh/id_rsa", "", "a\x00b"])
def test_home_and_invalid_paths_are_refused(ws: Path, raw: str) -> None:
    with pytest.raises(WorkspaceError):
        resolve_in_workspace(ws, raw)


def test_missing_file_with_must_exist(ws: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        resolve_in_workspace(ws, str(ws / "nope.py"), must_exist=True)


async def test_pipeline_reads_a_code_file_given_as_an_absolute_path(
    tmp_path: Path, ws: Path
) -> None:
    yaml_text = """
workflow:
  name: review
  steps:
    - name: c
      type: claude
      prompt:
        - {type: static, content: "Review:"}
        - {type: file, path: "{{ code_file }}"}
"""
    provider = CountingProvider()
    outcome = await run_pipeline(
        doc(yaml_text, base_dir=tmp_path),
        inputs={"code_file": str(ws / "src" / "app.py")},
        workspace=ws,
        output_dir=tmp_path / "out",
        provider_for=provider,
    )
    assert outcome.status == "succeeded", outcome.error
    assert provider.requests[0].prompt == "Review:\nprint('hi')\n"
