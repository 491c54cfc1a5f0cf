"""The Content-Security-Policy follows the build: a rebuild under a running server (another app
built in the same tree, a deploy) changes the inline scripts, and the policy must allow the new
ones (the fresh-clone CI of stop 13 served a page whose inline script the cached policy lacked)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from elexirion_app.api import security_headers
from elexirion_app.api.security_headers import content_security_policy, inline_script_hashes


def _page(build: Path, name: str, script: str, mtime_ns: int) -> None:
    page = build / name
    page.write_text(f"<html><script>{script}</script><script src='/a.js'></script></html>")
    os.utime(page, ns=(mtime_ns, mtime_ns))


def test_policy_is_recomputed_when_the_build_changes(tmp_path: Path) -> None:
    build = tmp_path / "client"
    build.mkdir()
    _page(build, "login.html", "window.port = 3151", 1_000_000_000)
    first = content_security_policy(build)
    [old] = inline_script_hashes([build / "login.html"])
    assert old in first

    _page(build, "login.html", "window.port = 3187", 2_000_000_000)
    second = content_security_policy(build)
    [new] = inline_script_hashes([build / "login.html"])
    assert new in second and old not in second

    _page(build, "chat.html", "window.chat = 1", 1_500_000_000)  # older file, new page
    third = content_security_policy(build)
    assert all(h in third for h in inline_script_hashes([build / "chat.html"]))


def test_no_build_means_self_only(tmp_path: Path) -> None:
    assert "script-src 'self';" in content_security_policy(tmp_path / "missing")


def test_responses_follow_a_rebuild_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The middleware's policy looks at the build at most once per ``STAMP_EVERY_S``."""
    clock = [100.0]
    monkeypatch.setattr(security_headers.time, "monotonic", lambda: clock[0])
    build = tmp_path / "client"
    build.mkdir()
    _page(build, "login.html", "window.port = 1", 1_000_000_000)
    first = security_headers.current_policy(build)
    [old] = inline_script_hashes([build / "login.html"])
    assert old in first

    _page(build, "login.html", "window.port = 2", 2_000_000_000)
    clock[0] += security_headers.STAMP_EVERY_S / 2
    assert security_headers.current_policy(build) == first  # not looked at again yet
    clock[0] += security_headers.STAMP_EVERY_S
    [new] = inline_script_hashes([build / "login.html"])
    assert new in security_headers.current_policy(build)
