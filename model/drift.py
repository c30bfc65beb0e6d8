"""The drift reference: what the training data looked like, binned, so live traffic can be compared with it.

Written into the manifest at training (`Manifest.drift`), read by the service (its per-bin counters), the
Prometheus rules (PSI over a window) and `python -m pipelines drift` (PSI from the log in SQL). One binning
rule for all of them: a feature's `edges` are its inner bin edges e_1 < ... < e_{k-1}, and a value v falls in
bin i where e_i <= v < e_{i+1}, with open ends (bin 0 is below e_1, bin k-1 is e_{k-1} and above). That is
`numpy.searchsorted(edges, v, side="right")` and PostgreSQL's `width_bucket(v, edges)`. A classifier's output
is binned by class instead (`classes`).

PSI (population stability index) = sum over bins of (live - reference) * ln(live / reference), with each
fraction floored at `PSI_FLOOR` so an empty bin counts as rare, not impossible. Every PSI in modelship is
this function, or this formula in SQL or PromQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

BINS = 10  # quantile bins per feature, before equal edges (a feature with few distinct values) are merged
PSI_FLOOR = 1e-4  # the smallest fraction PSI uses, live or reference
THRESHOLD_FLOOR = 0.1  # the common rule of thumb: PSI under 0.1 is no meaningful shift


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())


class BinnedReference(_Part):
    """One feature's (or the output's) reference: its bins and the fraction of training rows in each."""

    edges: tuple[float, ...] = ()  # inner edges, increasing; empty for a classifier's output
    classes: tuple[str, ...] | None = None  # a classifier's output: one bin per class, in this order
    fractions: tuple[float, ...]  # len(edges) + 1 bins, or one per class; they sum to 1
    threshold: float  # PSI above it over a window of `DriftReference.window` live values is drift

    @property
    def bins(self) -> int:
        return len(self.fractions)


class DriftReference(_Part):
    window: int  # the live sample size the thresholds are calibrated for
    features: dict[str, BinnedReference]
    output: BinnedReference


def psi(reference: Sequence[float], live: Sequence[float]) -> float:
    """PSI of live fractions against reference fractions (same bins, each summing to 1)."""
    total = 0.0
    for ref, got in zip(reference, live, strict=True):
        r, g = max(ref, PSI_FLOOR), max(got, PSI_FLOOR)
        total += (g - r) * math.log(g / r)
    return total


def fractions(counts: Sequence[float]) -> list[float]:
    """Counts per bin as fractions (all zero when nothing was counted)."""
    n = sum(counts)
    return [c / n if n else 0.0 for c in counts]
