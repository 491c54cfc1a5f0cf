"""Dollar amounts as people read them, the same on every page, report and CLI line.

``usd(value)``: ``$0.00`` for nothing; two decimals from a dollar up (``$1,234.56``); below a
dollar as many decimals as the amount needs, at least two and at most six (``$0.50``,
``$0.0025``, ``$0.000120`` → ``$0.00012``), so a tenth of a cent is neither rounded to zero
nor padded to ``$0.000000``. Display only: stored and API amounts keep their exact digits.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def usd(value: Any) -> str:
    amount = Decimal(str(value or 0))
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount >= 1:
        return f"{sign}${amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    text = f"{amount.quantize(Decimal('0.000001'), ROUND_HALF_UP):f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    if decimals.strip("0") == "":  # under half a millionth: say so rather than "$0.00"
        return f"{sign}<$0.000001"
    return f"{sign}${whole}.{decimals.ljust(2, '0')}"
