"""Order statistics for timing samples. Medians and percentiles, never means: one GC pause or
a neighbour's test suite must not move the figure that is compared."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), like numpy's default."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(samples_ns: Sequence[float]) -> dict[str, Any]:
    """Median, p99 and interquartile range, in microseconds."""
    us = [s / 1000 for s in samples_ns]
    return {
        "n": len(us),
        "p50_us": round(percentile(us, 50), 1),
        "p99_us": round(percentile(us, 99), 1),
        "iqr_us": round(percentile(us, 75) - percentile(us, 25), 1),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else math.inf
