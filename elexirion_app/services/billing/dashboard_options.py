"""The dashboard's filter options: the models, providers, pipelines and callers present in a
scope's range and users, read from the key-only ``usage_option_day`` / ``usage_option_hour``
(``db/billing_models``: one row per period x user x kind x value, and per period x kind x
value for every user together) with the whole-days + edge-hours pieces of
``dashboard_sql``, so the options are exactly those of the hours in [since, until).

They replaced a DISTINCT per kind over the counter rollups (12 statement parts reading
``usage_day_all`` three times, ``usage_day_pipeline`` and ``usage_rollup``'s edge hours for
everyone: 26-40 ms at 1M ledger rows on PostgreSQL, EXPLAIN ANALYZE in bench/README
"dashboard.py"); now three parts over at most a few dozen rows per day.
Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from elexirion_app.db.billing_models import EVERY_USER, UsageOptionDay, UsageOptionHour
from elexirion_app.services.billing.dashboard_sql import Part, Scope, execute, pieces
from elexirion_app.services.billing.rollup_rows import OPTION_KINDS

MAX_OPTIONS = 200
_TABLES: dict[str, list[tuple[Any, frozenset[str]]]] = {
    "day": [(UsageOptionDay, frozenset({"user_id"}))],
    "hour": [(UsageOptionHour, frozenset({"user_id"}))],
}


def options(session: Session, s: Scope) -> dict[str, list[str]]:
    """The models, providers, pipelines and callers present in the scope's range and users
    (the other filters left out, so a choice can be changed), sorted, at most
    ``MAX_OPTIONS`` each."""
    user = EVERY_USER if s.user_id is None else s.user_id
    parts: list[Part] = [("distinct", None, p) for p in pieces(s, _TABLES, {"user_id"})]
    seen: dict[str, set[str]] = {kind: set() for kind in OPTION_KINDS}
    for kind, value in execute(session, parts, {"user_id": user}, s.grouping):
        seen[str(kind)].add(str(value))
    return {kind: sorted(seen[kind])[:MAX_OPTIONS] for kind in OPTION_KINDS}
