"""The one percentile of every latency figure we compute from samples (the gate's timeline, the bench, probes, tests).

Locust's and wrk's own percentiles come from their histograms and Prometheus's from its buckets; those are
theirs. Every percentile computed here from a list of samples is this one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentiles(values: Iterable[float], *quantiles: float) -> tuple[float, ...]:
    """Nearest-rank percentiles: for quantile q in [0, 1], the sample of rank ceil(q * n) (1-based, at least 1).

    That is a value that was observed (never an interpolation between two), the smallest one with at
    least q of the samples at or below it; numpy calls it `method="inverted_cdf"`. No samples give 0.0.
    The values are sorted once for all the quantiles asked.
    """
    ordered = sorted(values)
    if not ordered:
        return tuple(0.0 for _ in quantiles)
    n = len(ordered)
    # 1e-9: 0.07 * 100 is 7.000000000000001 in floating point, whose ceiling would skip to rank 8
    return tuple(ordered[min(max(math.ceil(q * n - 1e-9), 1), n) - 1] for q in quantiles)


def percentile(values: Iterable[float], quantile: float) -> float:
    """One nearest-rank percentile (see `percentiles`)."""
    return percentiles(values, quantile)[0]
