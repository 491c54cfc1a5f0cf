"""Operators' ledger commands (issue 10): ``ledger compact``.

- ``ledger compact [--json]``: fold the closed periods' shards of the everyone-rollups into
  shard 0 now (``services/billing/compaction``; the served app does it every
  ``ELEXIRION_COMPACT_EVERY_S`` seconds) and print the rows folded per table. Safe while the
  app runs.

It uses the app's database (``DATABASE_URL`` / ``ELEXIRION_DATA_DIR``). stdout carries the
result; a database error prints one ``error: ...`` line and exits 1 (as ``budget``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from elexirion_app.cli_accounts import _database_message, _error
from elexirion_app.db.engine import get_engine
from elexirion_app.services.billing import compaction

COMMANDS = ("ledger",)


def add_parsers(sub: Any) -> None:
    """Register ``ledger compact`` on the main parser's subparsers."""
    ledger = sub.add_parser("ledger", help="cost ledger maintenance").add_subparsers(
        dest="action", required=True
    )
    lc = ledger.add_parser("compact", help="fold closed periods' rollup shards into one row")
    lc.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        counts = compaction.compact(get_engine())
    except SQLAlchemyError as exc:
        _error(_database_message(exc))
        return 1
    if args.json:
        print(json.dumps({"folded": counts}))
    else:
        for table, rows in counts.items():
            print(f"{table}: {rows} rows folded")
    return 0
