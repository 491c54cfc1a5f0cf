from __future__ import annotations

from decimal import Decimal

import pytest

from elexirion_app.core.money import usd


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "$0.00"),
        (None, "$0.00"),
        (Decimal("0.5"), "$0.50"),
        (Decimal("0.0025"), "$0.0025"),
        (Decimal("0.000120"), "$0.00012"),
        (Decimal("0.0000004"), "<$0.000001"),
        (Decimal("0.1234567"), "$0.123457"),
        (Decimal("1"), "$1.00"),
        (Decimal("1234.565"), "$1,234.57"),
        (-0.25, "-$0.25"),
        ("0.024854", "$0.024854"),
    ],
)
def test_amounts_read_the_same_everywhere(value: object, shown: str) -> None:
    assert usd(value) == shown
