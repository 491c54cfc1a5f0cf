from __future__ import annotations

import errno
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
    from elexirion_app.services.accounts import auth

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


# --- atomic zip extraction, clashes, OS errors --------------------------------------------


def _staging_leftovers(tmp_path: Path) -> list[Path]:
    staging = tmp_path / "workspaces" / ".staging"
    return list(staging.iterdir()) if staging.exists() else []


def _stored_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_zip_with_a_corrupt_crc_leaves_nothing_behind(db_url: str, tmp_path: Path) -> None:
    data = _stored_zip({"a.py": b"a = 1\n", "b.py": b"payload-of-b\n"})
    corrupt = data.replace(b"payload-of-b", b"payload-of-X")  # the CRC no longer matches
    with pytest.raises(InputError, match=r"b\.py.*damaged"):
        workspace.save_file(1, "crc.zip", corrupt)
    assert workspace.list_files(workspace.workspace_dir(1)) == []
    assert _staging_leftovers(tmp_path) == []


def _mark_encrypted(data: bytes, name: str) -> bytes:
    """Set the "encrypted" flag bit (0x1) of one member in its local and central headers."""
    raw = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        local = z.getinfo(name).header_offset
    raw[local + 6] |= 0x1
    central = raw.find(b"PK\x01\x02")
    while central != -1:
        name_len = int.from_bytes(raw[central + 28 : central + 30], "little")
        if raw[central + 46 : central + 46 + name_len] == name.encode():
            raw[central + 8] |= 0x1
        central = raw.find(b"PK\x01\x02", central + 4)
    return bytes(raw)


def test_a_zip_with_an_encrypted_member_leaves_nothing_behind(db_url: str) -> None:
    data = _stored_zip({"a.py": b"a = 1\n", "secret.txt": b"not really encrypted"})
    with pytest.raises(InputError, match=r"secret\.txt.*encrypted"):
        workspace.save_file(1, "enc.zip", _mark_encrypted(data, "secret.txt"))
    assert workspace.list_files(workspace.workspace_dir(1)) == []


def test_a_zip_with_a_file_and_a_folder_of_the_same_name_leaves_nothing_behind(
    db_url: str,
) -> None:
    for members in (
        {"clash": b"file", "clash/inner.txt": b"inner"},
        {"clash/inner.txt": b"inner", "clash": b"file"},
        {"a.py": b"1", "clash/": b"", "clash": b"file"},
    ):
        with pytest.raises(InputError, match="clash is both a file and a folder"):
            workspace.save_file(1, "clash.zip", _zip(members))
        assert list(workspace.workspace_dir(1).iterdir()) == []


def test_a_zip_with_the_same_member_twice_is_refused(db_url: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.py", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("a.py", b"2")
    with pytest.raises(InputError, match="twice"):
        workspace.save_file(1, "dup.zip", buf.getvalue())
    assert workspace.list_files(workspace.workspace_dir(1)) == []


def test_zip_members_clashing_with_existing_files_or_folders_are_refused(db_url: str) -> None:
    workspace.save_file(1, "clash", b"a file")
    workspace.save_file(1, "dir/keep.txt", b"kept")
    with pytest.raises(InputError, match=r"clash/inner\.txt: clash is a file"):
        workspace.save_file(1, "z.zip", _zip({"new.py": b"1", "clash/inner.txt": b"x"}))
    with pytest.raises(InputError, match="dir is a folder"):
        workspace.save_file(1, "z.zip", _zip({"new.py": b"1", "dir": b"x"}))
    root = workspace.workspace_dir(1)
    assert [f.path for f in workspace.list_files(root)] == ["clash", "dir/keep.txt"]
    assert (root / "clash").read_bytes() == b"a file"


def test_a_plain_file_under_an_existing_file_is_a_clear_error(db_url: str) -> None:
    workspace.save_file(1, "clash", b"a file")
    with pytest.raises(InputError, match=r"clash/x\.txt: clash is a file"):
        workspace.save_file(1, "clash/x.txt", b"x")
    workspace.save_file(1, "folder/a.txt", b"x")
    with pytest.raises(InputError, match="folder is a folder"):
        workspace.save_file(1, "folder", b"x")


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (errno.ENAMETOOLONG, InputError, "too long"),
        (errno.EEXIST, InputError, "clash"),
        (errno.ENOTDIR, InputError, "clash"),
        (errno.EACCES, WorkspaceError, "not allowed"),
        (errno.ENOSPC, WorkspaceError, "disk is full"),
    ],
)
def test_os_errors_while_moving_into_place_are_clear_and_undone(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    kind: type[Exception],
    words: str,
) -> None:
    workspace.save_file(1, "pkg/a.py", b"old a\n")
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "b.py":
            raise OSError(code, os.strerror(code), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(workspace.os, "replace", failing_replace)
    zipped = _zip({"pkg/a.py": b"new a\n", "pkg/sub/b.py": b"b\n"})
    with pytest.raises(kind, match=words) as info:
        workspace.save_file(1, "p.zip", zipped)
    assert "pkg/sub/b.py" in str(info.value)
    root = workspace.workspace_dir(1)
    assert [f.path for f in workspace.list_files(root)] == ["pkg/a.py"]
    assert (root / "pkg" / "a.py").read_bytes() == b"old a\n"  # the replaced file is back
    assert not (root / "pkg" / "sub").exists()  # the folder made for b.py is gone
    assert _staging_leftovers(tmp_path) == []


def test_an_os_error_on_a_plain_file_names_it(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(workspace.os, "replace", denied)
    with pytest.raises(WorkspaceError, match=r"notes\.txt: the server is not allowed"):
        workspace.save_file(1, "notes.txt", b"x")
    assert workspace.list_files(workspace.workspace_dir(1)) == []


def test_overlong_names_are_refused_naming_the_file(db_url: str) -> None:
    long_part = "n" * 256
    with pytest.raises(InputError, match="longer than 255 bytes"):
        workspace.save_file(1, f"{long_part}.py", b"x")
    with pytest.raises(InputError, match="longer than 255 bytes"):
        workspace.save_file(1, "z.zip", _zip({"ok.py": b"1", f"dir/{long_part}": b"x"}))
    assert workspace.list_files(workspace.workspace_dir(1)) == []


# --- streaming, quota --------------------------------------------------------------------


class _CountingFile(io.RawIOBase):
    """A readable file of ``size`` bytes that records how much was asked for per read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.total_read = 0
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = self.left if n is None or n < 0 else min(n, self.left)
        self.largest_read = max(self.largest_read, want)
        self.left -= want
        self.total_read += want
        return b"x" * want


def test_uploads_are_read_in_chunks_and_stop_at_the_file_cap(db_url: str) -> None:
    src = _CountingFile(40 * 1024 * 1024)
    with pytest.raises(InputError, match=r"big\.bin is larger than 5 MB"):
        workspace.save_upload(1, "big.bin", src)
    assert src.largest_read <= workspace.CHUNK_BYTES
    assert src.total_read <= workspace.MAX_FILE_BYTES + workspace.CHUNK_BYTES
    assert workspace.list_files(workspace.workspace_dir(1)) == []
    ok = _CountingFile(3 * 1024 * 1024)
    assert workspace.save_upload(1, "ok.bin", ok) == workspace.FileEntry("ok.bin", 3 * 1024 * 1024)
    assert ok.largest_read <= workspace.CHUNK_BYTES


def test_the_workspace_quota_is_a_setting(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert workspace.quota_bytes() == 50 * 1024 * 1024
    monkeypatch.setenv("ELEXIRION_WORKSPACE_QUOTA_BYTES", "1000")
    workspace.save_file(1, "a.txt", b"x" * 600)
    with pytest.raises(InputError, match="does not fit"):
        workspace.save_file(1, "b.txt", b"x" * 600)
    with pytest.raises(InputError, match="does not fit"):
        workspace.save_file(1, "b.zip", _zip({"b.txt": b"y" * 600}))
    workspace.save_file(1, "a.txt", b"z" * 900)  # replacing a file counts only the difference
    assert [(f.path, f.size) for f in workspace.list_files(workspace.workspace_dir(1))] == [
        ("a.txt", 900)
    ]


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("evil\u202egnp.py", "evilgnp.py"),
        ("a\x00b\x1f\x7f\x85c.py", "abc.py"),
        ("\u200e\u200f\u2066x\u2069\u202a\u202b\u202c\u202d.py", "x.py"),
        ("dir\x07/file\x9b.txt", "dir/file.txt"),
        ("\u00e9" * 127 + ".", "\u00e9" * 127 + "."),  # 255 bytes: allowed
        ("ünïcödé/名前.py", "ünïcödé/名前.py"),
    ],
)
def test_names_lose_controls_and_bidi_marks(raw: str, clean: str) -> None:
    assert workspace._safe_name(raw) == clean


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("\x01\x02", InputError),
        ("\u202e", InputError),
        (".\x00./x", WorkspaceError),  # ".." once the control is gone
        ("\u00e9" * 128, InputError),  # 256 bytes
        ("a/" + "b" * 256, InputError),
        ("/".join(["d"] * 600), InputError),  # whole path too long
        ("x" * 1_000_000, InputError),
        ("\ud800.py", InputError),  # not encodable
        (10**30, InputError),
        ({"a": 1}, InputError),
    ],
)
def test_bad_names_are_refused_clearly(raw: object, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        workspace._safe_name(raw)


def test_stored_files_have_clean_names(db_url: str) -> None:
    workspace.save_file(1, "report\u202efdp.exe", b"x")
    workspace.save_file(1, "z.zip", _zip({"src/\u2066a\x1b.py": b"1"}))
    assert [f.path for f in workspace.list_files(workspace.workspace_dir(1))] == [
        "reportfdp.exe",
        "src/a.py",
    ]


# --- listing, deleting, folders ------------------------------------------------------------


def test_listing_skips_links_and_deleting_a_link_keeps_its_target(
    db_url: str, tmp_path: Path
) -> None:
    workspace.save_file(1, "a.py", b"1")
    root = workspace.workspace_dir(1)
    (root / "to-root").symlink_to(root)
    (root / "to-a").symlink_to(root / "a.py")
    assert [f.path for f in workspace.list_files(root)] == ["a.py"]
    workspace.delete_file(1, "to-root")
    workspace.delete_file(1, "to-a")
    assert [f.path for f in workspace.list_files(root)] == ["a.py"]
    assert sorted(p.name for p in root.iterdir()) == ["a.py"]


def test_odd_folder_values_are_refused_not_crashing(db_url: str) -> None:
    for folder in ("/tmp/\x00x", "x" * 100_000, "²"):
        with pytest.raises(PermissionDenied):
            workspace.resolve_workspace(1, folder)


def test_a_zip_of_half_a_million_folders_is_refused_before_parsing(db_url: str) -> None:
    """Found by the attacker's pass: folder entries counted as 0 files, and parsing the
    central directory cost 300 MB and seconds per upload."""
    import io
    import zipfile

    from elexirion_app.core.errors import InputError
    from elexirion_app.services import workspace as ws

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(ws.MAX_ZIP_ENTRIES + 1):
            zf.writestr(zipfile.ZipInfo(f"d{i}/"), b"")
    with pytest.raises(InputError, match="entries"):
        ws.save_file(1, "dirs.zip", buf.getvalue())
    assert ws.list_files(ws.workspace_dir(1)) == []


def test_startup_sweeps_abandoned_staging_folders(db_url: str, tmp_path: Path) -> None:
    base = tmp_path / "workspaces" / ".staging"
    old, young = base / "3-old", base / "4-young"
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "file").write_bytes(b"x" * 10)
    os.utime(old, (0, 0))
    assert workspace.sweep_staging(older_than_s=3600) == 1
    assert not old.exists() and young.exists()


def test_deeply_nested_zips_are_refused_quickly(db_url: str) -> None:
    """Found by the second attacker pass: 200 empty files 400 folders deep took 100 s of a
    server thread (the clash check was quadratic in the depth) and made 80,000 folders the
    quota did not count."""
    import io
    import time
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(200):
            zf.writestr("/".join(["a"] * 100) + f"/f{i}.txt", b"")
    started = time.process_time()
    with pytest.raises(InputError, match="deep"):
        workspace.save_file(1, "deep.zip", buf.getvalue())
    assert time.process_time() - started < 5  # CPU, not wall: refused before any walk
    wide = io.BytesIO()
    with zipfile.ZipFile(wide, "w") as zf:
        for i in range(workspace.MAX_FILES // 3 + 50):  # fewer files than the cap, 3 folders each
            zf.writestr(f"a{i}/b{i}/c{i}/f.txt", b"")
    with pytest.raises(InputError, match="folders"):
        workspace.save_file(1, "wide.zip", wide.getvalue())
    assert workspace.list_files(workspace.workspace_dir(1)) == []


def test_a_second_concurrent_upload_of_the_same_user_is_refused_not_queued(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    entered, release = threading.Event(), threading.Event()
    real = workspace._check_quota

    def slow(*args: object, **kwargs: object) -> None:
        entered.set()
        release.wait(10)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(workspace, "_check_quota", slow)
    first = threading.Thread(target=workspace.save_file, args=(1, "a.txt", b"a"))
    first.start()
    assert entered.wait(10)
    with pytest.raises(InputError, match="Another upload"):
        workspace.save_file(1, "b.txt", b"b")
    release.set()
    first.join(10)
    assert [f.path for f in workspace.list_files(workspace.workspace_dir(1))] == ["a.txt"]
