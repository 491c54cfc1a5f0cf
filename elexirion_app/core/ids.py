"""Ids from clients, parsed strictly: a positive integer that fits a database column.

``"²".isdigit()`` is true and ``int("²")`` raises; ``10**30`` overflows SQLite and PostgreSQL.
Both, and every other odd value, are simply "not an id" here.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value: Any) -> int | None:
    """A positive 64-bit id from an int or a string of ASCII digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= MAX_ID else None
