"""The one percentile: nearest rank, checked by hand and against numpy's definition of the same name."""

from __future__ import annotations

import random

import numpy as np
import pytest

from loadtest.stats import percentile, percentiles


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) == 0
    assert percentiles([], 0.5, 0.99) == (0.0, 0.0)


def test_order_of_the_samples_does_not_matter_and_the_answer_was_observed() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentiles(values, 0.0, 0.2, 0.21, 0.5, 1.0) == (1.0, 1.0, 2.0, 3.0, 5.0)
    assert percentile([float(v) for v in range(1, 101)], 0.07) == 7  # 0.07 * 100 is 7.000000000000001


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_equals_numpys_inverted_cdf(size: int) -> None:
    rng = random.Random(size)
    values = [rng.expovariate(1.0) for _ in range(size)]
    for quantile in (0.5, 0.9, 0.95, 0.99, 0.999):
        assert percentile(values, quantile) == float(np.percentile(values, quantile * 100, method="inverted_cdf"))
