"""Column types shared by the ledger's tables."""

from __future__ import annotations

from sqlalchemy import Column, Numeric


def money_column(digits: int) -> Column:  # type: ignore[type-arg]
    """A NOT NULL exact decimal with 8 places (dollars: no float rounding in the ledger)."""
    return Column(Numeric(digits, 8), nullable=False)
