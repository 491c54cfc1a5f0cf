from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from elexirion_app.core.errors import InputError, PermissionDenied, WorkspaceError
from elexirion_app.services import workspace


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_files_and_zips_land_in_the_users_own_workspace(db_url: str) -> None:
    workspace.save_file(1, "src/app.py", b"print('hi')\n")
    workspace.save_file(1, "code.zip", _zip({"pkg/a.py": b"a = 1\n", "pkg/b.py": b"b = 2\n"}))
    root = workspace.workspace_dir(1)
    assert [f.path for f in workspace.list_files(root)] == ["pkg/a.py", "pkg/b.py", "src/app.py"]
    assert workspace.list_files(workspace.workspace_dir(2)) == []


@pytest.mark.parametrize("name", ["../evil.py", "/etc/passwd", "a/../../evil.py", "~/x"])
def test_upload_names_outside_the_workspace_are_refused(db_url: str, name: str) -> None:
    with pytest.raises(WorkspaceError):
        workspace.save_file(1, name, b"x")


def test_zip_slip_symlinks_and_bombs_are_refused_before_writing(db_url: str) -> None:
    with pytest.raises(WorkspaceError):
        workspace.save_file(1, "slip.zip", _zip({"ok.py": b"1", "../../escape.py": b"x"}))
    assert workspace.list_files(workspace.workspace_dir(1)) == []  # nothing half-written
    bomb = _zip({"big.txt": b"0" * (4 * 1024 * 1024)})
    with pytest.raises(InputError, match="zip bomb"):
        workspace.save_file(1, "bomb.zip", bomb)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(WorkspaceError):
        workspace.save_file(1, "link.zip", buf.getvalue())
    with pytest.raises(InputError):
        workspace.save_file(1, "broken.zip", b"not a zip")


def test_allowed_folders_are_exact_and_admin_configured(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = tmp_path / "repo"
    allowed.mkdir()
    monkeypatch.setenv("ELEXIRION_ALLOWED_FOLDERS", str(allowed))
    assert workspace.resolve_workspace(1, str(allowed)) == allowed.resolve()
    with pytest.raises(PermissionDenied):
        workspace.resolve_workspace(1, str(tmp_path))
    with pytest.raises(PermissionDenied):
        workspace.resolve_workspace(1, os.path.join(str(allowed), ".."))


def test_delete_is_confined(db_url: str) -> None:
    workspace.save_file(1, "a.py", b"1")
    workspace.delete_file(1, "a.py")
    assert workspace.list_files(workspace.workspace_dir(1)) == []
    with pytest.raises(WorkspaceError):
        workspace.delete_file(1, "../2")


def test_a_user_can_choose_an_allowed_folder_and_go_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elexirion_app.db.engine import session_scope
    from elexirion_app.services import auth

    with session_scope() as s:
        uid = auth.register(s, "w@example.com", "password-1").id
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("ELEXIRION_ALLOWED_FOLDERS", str(repo))
    assert workspace.current_workspace(uid) == workspace.workspace_dir(uid)
    with pytest.raises(PermissionDenied):
        workspace.choose_folder(uid, str(tmp_path))
    workspace.choose_folder(uid, str(repo))
    assert workspace.current_workspace(uid) == repo.resolve()
    # The admin withdraws the folder: the user is back in their own files.
    monkeypatch.setenv("ELEXIRION_ALLOWED_FOLDERS", "")
    assert workspace.current_workspace(uid) == workspace.workspace_dir(uid)
    workspace.choose_folder(uid, None)
    assert workspace.chosen_folder(uid) is None
