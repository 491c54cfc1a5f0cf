"""Which filter-option keys (``usage_option_day`` / ``_hour``) this process saw committed,
so the ledger's writer (``ledger.write``) skips rebuilding and re-inserting them."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from elexirion_app.services.billing.rollup_rows import ROLLUP_KEY


class KnownOptions:
    """The filter-option keys (``usage_option_day`` / ``_hour``) this process saw committed,
    per engine: a ``usage_rollup`` key (hour, user, model, provider, pipeline, caller) here
    has all its option rows in the database, so the next attempt of that key skips building
    and re-inserting them (16 ``ON CONFLICT DO NOTHING`` rows an attempt, ~20 % of the
    writer's CPU). A key is added only after the transaction that wrote it committed
    (``record_many``); nothing deletes option rows. Bounded: forgotten wholesale past
    ``LIMIT`` keys (the next attempts insert them again, which is harmless)."""

    LIMIT = 50_000

    def __init__(self) -> None:
        self._seen: weakref.WeakKeyDictionary[Engine, set[tuple[Any, ...]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def unknown(self, engine: Engine, fine: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        seen = self._seen.get(engine) or ()
        return [r for r in fine if tuple(r[k] for k in ROLLUP_KEY) not in seen]

    def add(self, engine: Engine, fine: Sequence[dict[str, Any]]) -> None:
        if not fine:
            return
        with self._lock:
            seen = self._seen.setdefault(engine, set())
            if len(seen) + len(fine) > self.LIMIT:
                seen.clear()
            seen.update(tuple(r[k] for k in ROLLUP_KEY) for r in fine)

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()


_KNOWN = KnownOptions()


def forget_known_options() -> None:
    """Forget which filter-option keys were seen committed: for whoever deletes option rows
    under a running process (a test emptying its tables, a restore of the database); the
    next attempts insert their options again."""
    _KNOWN.forget()


def unknown(engine: Engine, fine: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``usage_rollup`` rows of ``fine`` whose options are not known to be stored."""
    return _KNOWN.unknown(engine, fine)


def add(engine: Engine, fine: Sequence[dict[str, Any]]) -> None:
    """``fine``'s options are stored: call once the transaction that wrote them committed."""
    _KNOWN.add(engine, fine)
