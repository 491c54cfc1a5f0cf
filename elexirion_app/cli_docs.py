"""``python -m elexirion_app.pipelines.spec.docs [--check] [--path FILE]``: write (or check) the
reference section of the pipeline format documentation, generated from the typed spec. The
command line's part (arguments, messages): the spec package only renders the text."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from elexirion_app.pipelines.spec.docs import DOC, DocsError, render_document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elexirion_app.pipelines.spec.docs",
        description="Write the generated reference into the pipeline format documentation.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is outdated")
    parser.add_argument("--path", type=Path, default=DOC, help="the Markdown file")
    args = parser.parse_args(argv)
    path: Path = args.path
    try:
        current = path.read_text(encoding="utf-8")
        wanted = render_document(current)
    except (OSError, DocsError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    if current == wanted:
        return 0
    if args.check:
        print(f"{path} is out of date: run python -m elexirion_app.pipelines.spec.docs")
        return 1
    path.write_text(wanted, encoding="utf-8")
    print(f"wrote {path}")
    return 0
