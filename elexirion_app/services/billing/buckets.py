"""Latency / time-to-first-token histogram buckets shared by the ledger writer and the dashboard.

``usage_rollup`` keeps one count per bucket (``lat_b0..lat_b19``, ``ttft_b0..ttft_b19``); counts
from any set of rows can be summed and then asked for a percentile (mergeable, no scan).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

BOUNDS_MS: tuple[float, ...] = (
    25, 50, 75, 100, 150, 200, 300, 400, 600, 800,
    1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 20000, math.inf,
)  # fmt: skip
N_BUCKETS = len(BOUNDS_MS)
LAT_COLUMNS: tuple[str, ...] = tuple(f"lat_b{i}" for i in range(N_BUCKETS))
TTFT_COLUMNS: tuple[str, ...] = tuple(f"ttft_b{i}" for i in range(N_BUCKETS))


def bucket_of(ms: float) -> int:
    """The index of the first bucket whose upper bound is >= ``ms`` (negatives/NaN: bucket 0)."""
    if not ms > 0:
        return 0
    return bisect.bisect_left(BOUNDS_MS, ms)


def percentile(counts: Sequence[int], q: float) -> float:
    """The upper bound of the bucket holding the ``q``-quantile (0 < q <= 1) of ``counts``.

    Returns 0.0 for no observations. The last bucket's bound is ``inf``: a quantile landing
    there is reported as the largest finite bound (the honest "> 20 s" is the caller's label).
    """
    if len(counts) != N_BUCKETS:
        raise ValueError(f"expected {N_BUCKETS} bucket counts, got {len(counts)}")
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    total = sum(counts)
    if total <= 0:
        return 0.0
    rank = math.ceil(q * total)
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            bound = BOUNDS_MS[i]
            return float(BOUNDS_MS[-2] if math.isinf(bound) else bound)
    return float(BOUNDS_MS[-2])
