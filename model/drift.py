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

import numpy as np
from pydantic import BaseModel, ConfigDict

BINS = 10  # quantile bins per feature, before equal edges (a feature with few distinct values) are merged
PSI_FLOOR = 1e-4  # the smallest fraction PSI uses, live or reference
THRESHOLD_FLOOR = 0.1  # the common rule of thumb: PSI under 0.1 is no meaningful shift

# The live sample a verdict needs, and the one the thresholds are calibrated for. PSI of a sample against its own
# population is noise of about (bins - 1) / n: at 1000 values and 10 bins the 99th percentile of that noise stays
# under the 0.1 rule of thumb, so the floor, not the noise, sets the threshold and a real 0.1 shift is seen. An hour
# of modest traffic (0.3 requests/s) fills it. A smaller training set caps it (iris: 105 rows): the reference
# itself is then only that precise, and its calibrated thresholds say so by rising above the floor.
WINDOW = 1000
DRAWS = 200  # bootstrap pairs per threshold: enough for a stable 99th percentile, a few ms per feature
PERCENTILE = 99.0  # of the no-drift PSI: one window in a hundred of unchanged traffic would read as drift


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


def default_window(n_train: int) -> int:
    """The window for a training set of N_TRAIN rows: `WINDOW`, or fewer when training had fewer rows."""
    return max(1, min(WINDOW, n_train))


def quantile_edges(values: np.ndarray, bins: int = BINS) -> tuple[float, ...]:
    """Inner edges at VALUES' quantiles 1/bins .. (bins-1)/bins; equal edges merge (a feature with few distinct
    values gets fewer bins) and an edge at the minimum is dropped, as the bin below it would hold nothing."""
    edges = np.unique(np.quantile(values, np.arange(1, bins) / bins))
    return tuple(float(e) for e in edges[edges > values.min()])


def bin_of(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Each value's bin: the binning rule (PostgreSQL's `width_bucket(v, edges)`)."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")


def calibrated_threshold(bins: np.ndarray, n_bins: int, window: int, rng: np.random.Generator) -> float:
    """PSI between two independent WINDOW-sized draws (with replacement) of the training rows' BINS, at the
    `PERCENTILE`-th percentile over `DRAWS` pairs, floored at `THRESHOLD_FLOOR`.

    Two samples rather than one sample against the full reference: the reference is itself a finite sample, so
    its own noise is counted once more, which keeps a small training set from alarming on unchanged traffic."""
    noise = [
        psi(_sample_fractions(bins, n_bins, window, rng), _sample_fractions(bins, n_bins, window, rng))
        for _ in range(DRAWS)
    ]
    return round(max(THRESHOLD_FLOOR, float(np.percentile(noise, PERCENTILE))), 4)


def _sample_fractions(bins: np.ndarray, n_bins: int, window: int, rng: np.random.Generator) -> list[float]:
    return fractions(np.bincount(rng.choice(bins, window), minlength=n_bins).tolist())


def binned_reference(values: np.ndarray, window: int, rng: np.random.Generator) -> BinnedReference:
    """A numeric feature's (or a regression output's) reference: quantile bins and the training fractions."""
    edges = quantile_edges(values)
    bins = bin_of(values, edges)
    n_bins = len(edges) + 1
    return BinnedReference(
        edges=edges,
        fractions=tuple(fractions(np.bincount(bins, minlength=n_bins).tolist())),
        threshold=calibrated_threshold(bins, n_bins, window, rng),
    )


def class_reference(best: np.ndarray, classes: Sequence[str], window: int, rng: np.random.Generator) -> BinnedReference:
    """A classifier output's reference: BEST holds each row's class index (in CLASSES' order)."""
    n_bins = len(classes)
    return BinnedReference(
        classes=tuple(classes),
        fractions=tuple(fractions(np.bincount(best, minlength=n_bins).tolist())),
        threshold=calibrated_threshold(best, n_bins, window, rng),
    )


def build_reference(
    x_train: np.ndarray,
    names: Sequence[str],
    output: np.ndarray,
    classes: Sequence[str] | None,
    seed: int,
) -> DriftReference:
    """The training data's reference: X_TRAIN's columns (named NAMES) and the model's OUTPUT on those rows (its
    predicted values, or the predicted class index when CLASSES is given). Same inputs and seed, same reference."""
    rng = np.random.default_rng(seed)
    window = default_window(len(x_train))
    features = {name: binned_reference(x_train[:, column], window, rng) for column, name in enumerate(names)}
    out = binned_reference(output, window, rng) if classes is None else class_reference(output, classes, window, rng)
    return DriftReference(window=window, features=features, output=out)
