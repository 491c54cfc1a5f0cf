"""Command line: ``python -m elexirion_app validate|run|resume|generate|users|apikey``.

``print`` is allowed here (and only here): stdout carries results (``--json``: exactly one
JSON object), stderr carries progress, step lines and messages. Expected errors show their
``user_message``, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from elexirion_app.core import logs
from elexirion_app.core.errors import ElexirionError, InputError, PipelineValidationError, Problem
from elexirion_app.core.events import RunEvent, RunStarted, StepFinished, StepStarted
from elexirion_app.core.money import usd
from elexirion_app.core.types import TOKEN_KINDS

log = logging.getLogger(__name__)
STALE_AFTER_S = 60.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m elexirion_app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check pipeline files and print every problem")
    v.add_argument("files", nargs="+", type=Path)
    r = sub.add_parser("run", help="run a pipeline file")
    r.add_argument("file", type=Path)
    r.add_argument("--input", "-i", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument(
        "--from-checkpoint",
        action="store_true",
        help="reuse the finished steps of the pipeline's latest file checkpoint",
    )
    _common(r)
    s = sub.add_parser("resume", help="continue an interrupted or failed run")
    s.add_argument("run_id")
    _common(s)
    from elexirion_app import cli_accounts, cli_budget, cli_generate, cli_ledger

    cli_generate.add_parsers(sub)  # generate "a pipeline that ..."
    cli_accounts.add_parsers(sub)  # users create, apikey create|list|revoke
    cli_budget.add_parsers(sub)  # budget set|show
    cli_ledger.add_parsers(sub)  # ledger compact
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", type=Path, default=None)
    p.add_argument("--workspace", type=Path, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--no-records", action="store_true", help="do not write run records")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_inputs(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; values that look like JSON numbers/lists/maps/booleans are parsed."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--input expects KEY=VALUE, got {pair!r}")
        value: Any = raw
        if raw[:1] in "[{-0123456789" or raw in ("true", "false", "null"):
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        values[key.strip()] = value
    return values


class Progress:
    """An observer drawing a progress bar and ``• name [model]: text`` lines on stderr."""

    def __init__(self, stream: TextIO, bar: bool) -> None:
        from rich.console import Console

        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self.bar_enabled = bar and stream.isatty()
        self.top: set[str] = set()
        self.models: dict[str, str | None] = {}
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            self.top = set(event.step_names)
            if self.bar_enabled:
                from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
                from rich.progress import Progress as Bar

                self._progress = Bar(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=self.console,
                    transient=True,
                )
                self._progress.start()
                self._task = self._progress.add_task(event.pipeline, total=len(event.step_names))
        elif isinstance(event, StepStarted):
            self.models[event.step] = event.model
        elif isinstance(event, StepFinished) and event.step in self.top:
            self.console.print(step_line(event, self.models.get(event.step)), markup=False)
            if self._progress is not None:
                self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def step_line(event: StepFinished, model: str | None) -> str:
    result = event.result if isinstance(event.result, dict) else {}
    text: Any
    if event.status == "skipped":
        text = str(result.get("reason", "skipped"))
    elif event.status == "failed":
        text = f"FAILED: {event.error}"
    else:
        text = result.get("text") if isinstance(result.get("text"), str) else None
        if text is None:
            text = json.dumps(event.result, default=str, ensure_ascii=False)
    model = result.get("model") or model
    label = f" [{model}]" if model else ""
    flat = " ".join(str(text).split())
    return f"• {event.step}{label}: {flat[:100]}"


def _print_problems(problems: Sequence[Problem], stream: TextIO) -> None:
    for problem in problems:
        print(problem.format(), file=stream)


def cmd_validate(args: argparse.Namespace) -> int:
    from elexirion_app.pipelines.validate import validate_file

    failed = False
    for path in args.files:
        problems = validate_file(path)
        _print_problems(problems, sys.stdout)
        errors = [p for p in problems if p.severity == "error"]
        failed = failed or bool(errors)
        warnings = len(problems) - len(errors)
        status = "INVALID" if errors else "ok"
        print(f"{path}: {status} ({len(errors)} error(s), {warnings} warning(s))")
    return 1 if failed else 0


def _records_engine(args: argparse.Namespace) -> Any:
    if args.no_records:
        return None
    from sqlmodel import Session

    from elexirion_app.db.engine import create_all, get_engine
    from elexirion_app.services.runs.run_records import sweep_stale

    try:
        engine = get_engine()
        create_all(engine)
        with Session(engine) as session:  # runs whose worker died become resumable
            sweep_stale(session, STALE_AFTER_S)
            session.commit()
        return engine
    except Exception as exc:  # the run still works without records
        print(f"warning: run records disabled ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def _report(outcome: Any, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(outcome.to_json(), default=str, ensure_ascii=False))
    else:
        tokens = outcome.usage
        print(
            f"Run {outcome.run_id} {outcome.status}"
            + (f": {outcome.error}" if outcome.error else "")
            + f" — cost {usd(outcome.cost)}, tokens in {tokens.input} / out {tokens.output}"
        )
        if outcome.output_dir is not None and outcome.output_dir.exists():
            print(f"Outputs: {outcome.output_dir}")
    return 0 if outcome.succeeded else 1


async def _run(args: argparse.Namespace, progress: Progress) -> Any:
    from elexirion_app.pipelines.executor import run_pipeline
    from elexirion_app.pipelines.loader import load_file
    from elexirion_app.pipelines.validate import validate_document
    from elexirion_app.services.runs.run_records import run_recorded

    doc = load_file(args.file)
    problems = validate_document(doc)
    errors = [p for p in problems if p.severity == "error"]
    _print_problems([p for p in problems if p.severity != "error"], sys.stderr)
    if errors:
        raise PipelineValidationError(problems)
    kwargs: dict[str, Any] = {
        "inputs": parse_inputs(args.input),
        "workspace": args.workspace or default_workspace(doc.workflow),
        "output_dir": args.output_dir,
        "observers": [progress],
        "validate": False,
    }
    if args.from_checkpoint:
        from elexirion_app.pipelines.checkpoints import resume_results_from

        results = resume_results_from(doc.workflow)
        if results is None:
            raise InputError("no checkpoint found for this pipeline (is checkpoint_enabled set?)")
        kwargs["resume_results"] = results
    engine = _records_engine(args)
    if engine is None:
        return await run_pipeline(doc, **kwargs)
    yaml_text = args.file.read_text(encoding="utf-8")
    return await run_recorded(
        doc,
        pipeline_yaml=yaml_text,
        pipeline_path=str(args.file.resolve()),
        engine=engine,
        **kwargs,
    )


def default_workspace(workflow: dict[str, Any]) -> Path | None:
    """The current directory, unless the pipeline names its own ``workspace_dir``."""
    return None if workflow.get("workspace_dir") else Path.cwd()


async def _resume(args: argparse.Namespace, progress: Progress) -> Any:
    from elexirion_app.services.runs.run_records import resume_run

    engine = _records_engine(args)
    if engine is None:
        raise InputError("resume needs the run records database")
    return await resume_run(
        args.run_id,
        engine=engine,
        observers=[progress],
        workspace=args.workspace,
        output_dir=args.output_dir,
        default_workspace=default_workspace,
    )


def _json_failure(args: argparse.Namespace, error: str, problems: list[str] | None = None) -> None:
    """With ``--json``, a run that could not start still prints its one JSON object."""
    if not getattr(args, "json", False):
        return
    out: dict[str, Any] = {
        "run_id": getattr(args, "run_id", None),
        "status": "failed",
        "error": error,
        "steps": {},
        "cost_usd": 0.0,
        "tokens": dict.fromkeys(TOKEN_KINDS, 0),
    }
    if problems is not None:
        out["problems"] = problems
    print(json.dumps(out, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(logger="", default_format="text", default_level=logging.WARNING)
    try:
        if args.command == "validate":
            return cmd_validate(args)
        if args.command in ("users", "apikey"):
            from elexirion_app import cli_accounts

            return cli_accounts.run(args)
        if args.command == "budget":
            from elexirion_app import cli_budget

            return cli_budget.run(args)
        if args.command == "ledger":
            from elexirion_app import cli_ledger

            return cli_ledger.run(args)
        if args.command == "generate":
            from elexirion_app import cli_generate

            return cli_generate.run(args)
        progress = Progress(sys.stderr, bar=not args.no_progress)
        try:
            runner = _run if args.command == "run" else _resume
            outcome = asyncio.run(runner(args, progress))
        finally:
            progress.close()
        return _report(outcome, args)
    except PipelineValidationError as exc:
        _print_problems(exc.problems, sys.stderr)
        print(f"error: {exc.user_message}", file=sys.stderr)
        _json_failure(args, exc.user_message, [p.format() for p in exc.problems])
        return 1
    except ElexirionError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        _json_failure(args, exc.user_message)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
