"""Workspace tools of the Claude tool loop: confinement, behaviour, caps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elexirion_app.providers import tools
from elexirion_app.providers.tools import run_tool, select_tools

ALL = list(tools.SUPPORTED_TOOLS)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("import os\n\ndef main():\n    return 42\n")
    (root / "src" / "pkg" / "util.py").write_text("def helper():\n    return 'x'\n")
    (root / "README.md").write_text("# Demo\nline two\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    return root


@pytest.mark.parametrize(
    "name,args",
    [
        ("Read", {"path": "../secret.txt"}),
        ("Read", {"path": "/etc/passwd"}),
        ("Read", {"path": "src/../../secret.txt"}),
        ("LS", {"path": ".."}),
        ("Grep", {"pattern": "SECRET", "path": ".."}),
        ("Write", {"path": "../evil.txt", "content": "x"}),
        ("Edit", {"path": "/etc/hosts", "old_string": "a", "new_string": "b"}),
        ("Glob", {"pattern": "../*"}),
    ],
)
async def test_escapes_are_refused(ws: Path, name: str, args: dict[str, str]) -> None:
    result = await run_tool(name, args, ws, ALL)
    assert result.is_error
    assert "SECRET" not in result.output
    assert not (ws.parent / "evil.txt").exists()


async def test_symlinks_pointing_out_are_refused(ws: Path) -> None:
    os.symlink(ws.parent / "secret.txt", ws / "link.txt")
    os.symlink(ws.parent, ws / "outdir")
    read = await run_tool("Read", {"path": "link.txt"}, ws, ALL)
    assert read.is_error and "outside the workspace" in read.output
    via_dir = await run_tool("Read", {"path": "outdir/secret.txt"}, ws, ALL)
    assert via_dir.is_error
    write = await run_tool("Write", {"path": "outdir/new.txt", "content": "x"}, ws, ALL)
    assert write.is_error and not (ws.parent / "new.txt").exists()
    grep = await run_tool("Grep", {"pattern": "SECRET"}, ws, ALL)
    assert not grep.is_error and "SECRET" not in grep.output
    glob = await run_tool("Glob", {"pattern": "**/*.txt"}, ws, ALL)
    assert "secret" not in glob.output


async def test_read_with_offset_and_limit(ws: Path) -> None:
    whole = await run_tool("Read", {"path": "src/app.py"}, ws, ALL)
    assert (
        not whole.is_error and "return 42" in whole.output and "     1\timport os" in whole.output
    )
    part = await run_tool("Read", {"path": "src/app.py", "offset": 3, "limit": 1}, ws, ALL)
    assert "def main" in part.output and "import os" not in part.output


async def test_read_is_capped(ws: Path) -> None:
    (ws / "big.txt").write_text("x" * 100 + "\n" * 0 + ("y" * 99 + "\n") * 5000)
    result = await run_tool("Read", {"path": "big.txt", "limit": 100000}, ws, ALL)
    assert "truncated" in result.output
    assert len(result.output) < tools.READ_MAX_BYTES + 100_000


async def test_glob_grep_ls(ws: Path) -> None:
    glob = await run_tool("Glob", {"pattern": "**/*.py"}, ws, ALL)
    assert glob.output.splitlines() == ["src/app.py", "src/pkg/util.py"]
    grep = await run_tool("Grep", {"pattern": r"def \w+", "glob": "*.py"}, ws, ALL)
    assert "src/app.py:3: def main():" in grep.output
    assert "src/pkg/util.py:1: def helper():" in grep.output
    ls = await run_tool("LS", {}, ws, ALL)
    assert ls.output.splitlines() == ["README.md", "src/"]


async def test_grep_bad_regex_and_caps(ws: Path) -> None:
    bad = await run_tool("Grep", {"pattern": "(unclosed"}, ws, ALL)
    assert bad.is_error and "Invalid regular expression" in bad.output
    long = await run_tool("Grep", {"pattern": "a" * 5000}, ws, ALL)
    assert long.is_error
    (ws / "many.txt").write_text("hit\n" * 2000)
    many = await run_tool("Grep", {"pattern": "hit"}, ws, ALL)
    assert many.output.count("many.txt:") == tools.GREP_MAX_MATCHES


async def test_write_and_edit(ws: Path) -> None:
    w = await run_tool("Write", {"path": "out/new.md", "content": "alpha beta alpha"}, ws, ALL)
    assert not w.is_error and (ws / "out" / "new.md").read_text() == "alpha beta alpha"
    ambiguous = await run_tool(
        "Edit", {"path": "out/new.md", "old_string": "alpha", "new_string": "x"}, ws, ALL
    )
    assert ambiguous.is_error and "2 times" in ambiguous.output
    ok = await run_tool(
        "Edit",
        {"path": "out/new.md", "old_string": "alpha", "new_string": "x", "replace_all": True},
        ws,
        ALL,
    )
    assert not ok.is_error and (ws / "out" / "new.md").read_text() == "x beta x"
    missing = await run_tool(
        "Edit", {"path": "out/new.md", "old_string": "zzz", "new_string": "y"}, ws, ALL
    )
    assert missing.is_error


async def test_tools_not_offered_or_unknown_are_errors(ws: Path) -> None:
    bash = await run_tool("Bash", {"command": "ls"}, ws, ALL)
    assert bash.is_error and "not available" in bash.output
    write = await run_tool("Write", {"path": "a", "content": "b"}, ws, ["Read"])
    assert write.is_error and not (ws / "a").exists()
    no_ws = await run_tool("Read", {"path": "README.md"}, None, ALL)
    assert no_ws.is_error
    bad_args = await run_tool("Read", {"path": 5}, ws, ALL)
    assert bad_args.is_error


def test_select_tools() -> None:
    offered, unavailable = select_tools(
        ["Read", "Bash(git:*)", "Write", "Grep", "WebFetch"], ["Write"]
    )
    assert offered == ["Read", "Grep"]
    assert unavailable == ["Bash", "WebFetch"]
    defs = tools.tool_definitions(offered)
    assert [d["name"] for d in defs] == ["Read", "Grep"]
    assert all(d["input_schema"]["type"] == "object" for d in defs)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    anchor=st.sampled_from(["", "WS", "PARENT", "/", "~"]),
    parts=st.lists(
        st.sampled_from(["..", ".", "src", "pkg", "app.py", "", "~", "x", "secret.txt", "ws"]),
        min_size=1,
        max_size=6,
    ),
)
def test_no_path_resolves_outside_the_workspace(ws: Path, anchor: str, parts: list[str]) -> None:
    """Relative or absolute (the workspace, its parent, the root, ``~``), a path either
    resolves inside the workspace or is refused; an absolute path inside the workspace
    reads the same file as its relative spelling."""
    import asyncio

    from elexirion_app.core.errors import WorkspaceError
    from elexirion_app.core.paths import resolve_in_workspace

    prefix = {"WS": str(ws), "PARENT": str(ws.parent), "/": "/", "~": "~", "": ""}[anchor]
    raw = "/".join([prefix, *parts]) if prefix else "/".join(parts)
    root = ws.resolve()
    try:
        resolved = resolve_in_workspace(ws, raw)
    except WorkspaceError as exc:
        assert "outside the workspace" in exc.message or raw.strip("/") == ""
    else:
        assert resolved == root or root in resolved.parents
        if anchor == "WS":
            assert resolved == resolve_in_workspace(ws, "/".join([".", *parts]))
    result = asyncio.run(run_tool("Read", {"path": raw}, ws, ALL))
    assert "SECRET" not in result.output
    listing = asyncio.run(run_tool("LS", {"path": raw}, ws, ALL))
    assert listing.is_error or "secret.txt" not in listing.output  # a refusal echoes the path


async def test_absolute_path_inside_the_workspace_is_read(ws: Path) -> None:
    read = await run_tool("Read", {"path": str(ws / "src" / "app.py")}, ws, ALL)
    assert not read.is_error and "return 42" in read.output
    refused = await run_tool("Read", {"path": str(ws.parent / "secret.txt")}, ws, ALL)
    assert refused.is_error and f"outside the workspace {ws.resolve()}" in refused.output
