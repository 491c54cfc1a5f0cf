"""``python -m elexirion_app generate "a pipeline that …" [--out FILE]``: genesis from the
command line — the chat's repair loop (the model's YAML is validated, its problems are sent
back, up to ``--tries`` answers), a progress display on stderr, and the YAML written only once
it is valid (to ``--out``, or stdout). An invalid result prints its problems and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import InputError

COMMANDS = ("generate",)


def add_parsers(sub: Any) -> None:
    g = sub.add_parser("generate", help="generate a pipeline from a description")
    g.add_argument("request", help='what the pipeline should do, e.g. "a pipeline that …"')
    g.add_argument("--out", type=Path, default=None, help="write the YAML here (default: stdout)")
    g.add_argument("--name", default=None, help="the workflow's name (default: from the request)")
    g.add_argument("--tries", type=int, default=3, help="model answers at most (default 3)")
    g.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    g.add_argument("--no-progress", action="store_true", help="no progress display")


def _check_out(path: Path | None, force: bool) -> None:
    if path is None:
        return
    if path.exists() and not force:
        raise InputError(f"{path} exists: choose another --out or add --force")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent} is not a folder")


async def _generate(args: argparse.Namespace) -> Any:
    from rich.console import Console

    from elexirion_app.agent.genesis import generate_pipeline
    from elexirion_app.providers.choice import chat_provider
    from elexirion_app.services.billing import meter

    # Booked in the ledger as genesis calls (no user: the operator's machine).
    provider = meter.bind(chat_provider(), caller="genesis")
    console = Console(file=sys.stderr, highlight=False)
    label = "offline demo model" if provider.offline else provider.name
    base_dir = (args.out.parent if args.out else Path.cwd()).resolve()
    if args.no_progress:
        return await generate_pipeline(
            args.request, provider, max_tries=args.tries, name=args.name, base_dir=base_dir
        )
    with console.status(f"generating with the {label} …") as status:

        def show(text: str) -> None:
            status.update(text)
            console.print(f"• {text}")

        return await generate_pipeline(
            args.request,
            provider,
            max_tries=args.tries,
            name=args.name,
            base_dir=base_dir,
            on_progress=show,
        )


def run(args: argparse.Namespace) -> int:
    if args.tries < 1 or args.tries > 10:
        raise InputError("--tries is 1 to 10")
    _check_out(args.out, args.force)
    result = asyncio.run(_generate(args))
    if not result.valid:
        for problem in result.problems:
            print(problem.format(), file=sys.stderr)
        print(
            f"error: no valid pipeline after {result.attempts} answer(s); nothing was written",
            file=sys.stderr,
        )
        return 1
    for problem in result.problems:  # warnings of a valid pipeline
        print(problem.format(), file=sys.stderr)
    text = result.yaml_text if result.yaml_text.endswith("\n") else result.yaml_text + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out} (pipeline {result.name!r})", file=sys.stderr)
    cost = "" if result.offline else f", ${result.cost:.4f}"
    print(f"valid after {result.attempts} answer(s){cost}", file=sys.stderr)
    return 0
