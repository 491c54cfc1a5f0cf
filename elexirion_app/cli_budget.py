"""Operators' budget commands (issue 10): ``budget set`` and ``budget show``.

- ``budget set --email E --monthly-usd N [--per-run-usd M] [--warn-ratio R]``: a user's caps
  (a cap left out stays as it is; ``none`` removes it). Every change is audited.
- ``budget set --global --monthly-usd N [--per-run-usd M]``: everyone's monthly cap together
  (and the per-run cap of users without their own).
- ``budget show [--email E] [--json]``: the caps, this month's spend and what calls in flight
  hold, from the ledger's rollups.

They use the app's database (``DATABASE_URL`` / ``ELEXIRION_DATA_DIR``). stdout carries the
result; expected errors print one ``error: ...`` line and exit 1 (as ``users``/``apikey``).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from elexirion_app.cli_accounts import _database_message, _error, _user_id
from elexirion_app.core.errors import ElexirionError, InputError
from elexirion_app.db.engine import get_engine
from elexirion_app.services.accounts import audit
from elexirion_app.services.billing import budgets

COMMANDS = ("budget",)


def _usd(text: str) -> Decimal | None:
    if text.strip().lower() == "none":
        return None  # remove the cap
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of dollars") from exc


def add_parsers(sub: Any) -> None:
    """Register ``budget set|show`` on the main parser's subparsers."""
    budget = sub.add_parser("budget", help="spend caps").add_subparsers(
        dest="action", required=True
    )
    bs = budget.add_parser("set", help="set a user's caps, or the global ones")
    who = bs.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the user whose caps these are")
    who.add_argument("--global", dest="all", action="store_true", help="everyone's caps")
    bs.add_argument(
        "--monthly-usd",
        type=_usd,
        default=budgets.KEEP,
        help="monthly cap in USD ('none' removes it; omitted: unchanged)",
    )
    bs.add_argument(
        "--per-run-usd", type=_usd, default=budgets.KEEP,
        help="per-run cap in USD ('none' removes it; omitted: unchanged)",
    )  # fmt: skip
    bs.add_argument("--warn-ratio", type=float, help="warn at this share of a cap (0.8)")
    sh = budget.add_parser("show", help="caps, this month's spend and reservations")
    sh.add_argument("--email", help="a user (omit: the global caps and everyone's spend)")
    sh.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "set":
            _set(args)
        else:
            _show(args)
        return 0
    except ElexirionError as exc:
        _error(exc.user_message)
    except SQLAlchemyError as exc:
        _error(_database_message(exc))
    return 1


def _set(args: argparse.Namespace) -> None:
    if args.monthly_usd is budgets.KEEP and args.per_run_usd is budgets.KEEP:
        raise InputError("give --monthly-usd and/or --per-run-usd")
    with get_engine().begin() as conn:
        user_id = None
        if not args.all:
            with Session(bind=conn) as session:
                user_id = _user_id(session, args.email)
        changes = budgets.set_budget(
            conn,
            user_id,
            monthly_usd=args.monthly_usd,
            per_run_usd=args.per_run_usd,
            warn_ratio=args.warn_ratio,
        )
        if changes:
            with Session(bind=conn) as session:
                audit.record(
                    session,
                    "budget_changed",
                    subject_id=user_id,
                    target=args.email or "global",
                    detail={
                        "via": "cli",
                        **{f: {"old": o, "new": n} for f, (o, n) in changes.items()},
                    },
                )
                session.flush()
    print(f"budget set for {'everyone (global)' if args.all else args.email}", file=sys.stderr)


def _show(args: argparse.Namespace) -> None:
    with get_engine().connect() as conn:
        user_id = None
        if args.email:
            with Session(bind=conn) as session:
                user_id = _user_id(session, args.email)
        info = budgets.status(conn, user_id)
    if args.json:
        print(json.dumps({"email": args.email, **info}))
        return

    def money(v: float | None) -> str:
        return "none" if v is None else f"${v:,.4f}"

    print(f"{args.email or 'global'}: monthly cap {money(info['monthly_usd'])}, "
          f"per-run cap {money(info['per_run_usd'])}")  # fmt: skip
    used = "" if info["used_ratio"] is None else f" ({info['used_ratio']:.0%} of the cap)"
    print(f"spent since {info['month_start'][:10]}: {money(info['spent_usd'])}, "
          f"reserved by calls in flight: {money(info['reserved_usd'])}{used}")  # fmt: skip
    if info["exceeded"]:
        print("the monthly cap is reached: live calls are refused")
    elif info["warn"]:
        print("warning: past the warning ratio of the monthly cap")
