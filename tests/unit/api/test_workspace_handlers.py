"""The workspace page's Reflex handlers: public endpoints fed anything, never blocking."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import reflex as rx

from elexirion_app.services import workspace
from elexirion_app.services.accounts import auth
from elexirion_app.web.state import workspace as ws_state
from elexirion_app.web.state.auth import AuthState
from elexirion_app.web.state.workspace import WorkspaceState


async def _state(user_id: int | None) -> WorkspaceState:
    root = rx.State(_reflex_internal_init=True)  # type: ignore[call-arg]
    auth_state = await root.get_state(AuthState)
    auth_state._bound_user_id = user_id or 0
    return await root.get_state(WorkspaceState)


@pytest.fixture
def uid(db_url: str) -> int:
    from elexirion_app.db.engine import session_scope

    with session_scope() as s:
        return auth.register(s, "ws@example.com", "password-1").id


def _upload(name: str, data: bytes) -> rx.UploadFile:
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name))


async def test_an_anonymous_upload_is_sent_to_login_and_writes_nothing(uid: int) -> None:
    state = await _state(None)
    result = await WorkspaceState.upload.fn(state, [_upload("a.py", b"1")])
    assert "login" in str(result)
    assert workspace.list_files(workspace.workspace_dir(uid)) == []


async def test_uploads_land_in_the_senders_workspace_and_are_listed(uid: int) -> None:
    state = await _state(uid)
    await WorkspaceState.upload.fn(state, [_upload("a.py", b"print(1)\n")])
    assert state.error == ""
    assert state.message == "Saved a.py."
    assert [row.path for row in state.files] == ["a.py"]


async def test_an_oversized_file_is_a_message_and_the_others_are_saved(uid: int) -> None:
    state = await _state(uid)
    big = _upload("big.bin", b"x" * (workspace.MAX_FILE_BYTES + 1))
    await WorkspaceState.upload.fn(state, [big, _upload("ok.py", b"1")])
    assert "big.bin is larger than 5 MB" in state.error
    assert state.message == "Saved ok.py."


@pytest.mark.parametrize(
    "files",
    [
        "not a list",
        {"files": 1},
        [{"filename": "a.py", "file": "data"}],
        [10**30],
        [rx.UploadFile(file="forged", path=None)],  # type: ignore[arg-type]
        [_upload(f"f{i}.py", b"1") for i in range(ws_state.MAX_UPLOAD_FILES + 1)],
    ],
)
async def test_forged_upload_payloads_are_a_message_not_an_exception(uid: int, files: Any) -> None:
    state = await _state(uid)
    await WorkspaceState.upload.fn(state, files)
    assert state.error
    assert workspace.list_files(workspace.workspace_dir(uid)) == []


@pytest.mark.parametrize("value", [10**30, "²", {"a": 1}, ["x"], "x" * 1_000_000, 1.5, True])
async def test_odd_folder_and_path_arguments_are_a_message_not_an_exception(
    uid: int, value: Any
) -> None:
    state = await _state(uid)
    await WorkspaceState.use_folder.fn(state, value)
    assert state.error and state.message == ""
    state.error = ""
    await WorkspaceState.delete.fn(state, value)
    assert state.error


async def test_delete_and_folder_choice_work_for_the_sender(
    uid: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "main.py").write_text("x = 1\n")
    monkeypatch.setenv("ELEXIRION_ALLOWED_FOLDERS", str(repo))
    workspace.save_file(uid, "a.py", b"1")
    state = await _state(uid)
    await WorkspaceState.delete.fn(state, "a.py")
    assert state.error == "" and state.files == []
    await WorkspaceState.use_folder.fn(state, str(repo))
    assert state.error == ""
    assert state.current_folder == str(repo.resolve())
    assert [row.path for row in state.files] == ["main.py"]
    await WorkspaceState.use_folder.fn(state, "")
    assert state.current_folder == ""


async def test_file_and_database_work_runs_off_the_event_loop(
    uid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    threads: dict[str, set[int]] = {}

    def spy(name: str) -> None:
        real: Callable[..., Any] = getattr(workspace, name)

        def wrapper(*args: Any) -> Any:
            threads.setdefault(name, set()).add(threading.get_ident())
            return real(*args)

        monkeypatch.setattr(workspace, name, wrapper)

    for name in ("overview", "save_upload", "delete_file", "choose_folder"):
        spy(name)
    state = await _state(uid)
    await WorkspaceState.load.fn(state)
    await WorkspaceState.upload.fn(state, [_upload("z.zip", _zip_bytes())])
    await WorkspaceState.delete.fn(state, "pkg/a.py")
    await WorkspaceState.use_folder.fn(state, "")
    assert set(threads) == {"overview", "save_upload", "delete_file", "choose_folder"}
    assert all(loop_thread not in ids for ids in threads.values())


def _zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg/a.py", b"a = 1\n")
    return buf.getvalue()
