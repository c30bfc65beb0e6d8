"""The drift reference written at training: bins, fractions, calibrated thresholds, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.drift import (
    THRESHOLD_FLOOR,
    WINDOW,
    BinnedReference,
    bin_of,
    binned_reference,
    build_reference,
    default_window,
    psi,
    quantile_edges,
)
from model.manifest import Manifest
from model.train import train


def _check_bins(ref: BinnedReference) -> None:
    assert sum(ref.fractions) == pytest.approx(1.0)
    assert all(f > 0 for f in ref.fractions)  # no bin that training never filled
    assert list(ref.edges) == sorted(set(ref.edges))  # strictly increasing
    assert ref.threshold >= THRESHOLD_FLOOR


def test_house_reference_bins_features_and_predicted_values(house_artifact: Path) -> None:
    manifest = Manifest.load(house_artifact / "manifest.json")
    ref = manifest.drift
    assert ref is not None and ref.window == WINDOW  # 2000 training rows: the full window
    assert list(ref.features) == manifest.feature_names
    for part in (*ref.features.values(), ref.output):
        _check_bins(part)
    assert ref.features["size"].bins == 10 and ref.output.bins == 10 and ref.output.classes is None
    # bedrooms takes 1..5: duplicate quantiles merge into one bin per value, none below the minimum
    assert ref.features["bedrooms"].edges == (2.0, 3.0, 4.0, 5.0)


def test_iris_reference_bins_the_output_by_class(iris_artifact: Path) -> None:
    manifest = Manifest.load(iris_artifact / "manifest.json")
    ref = manifest.drift
    assert ref is not None and ref.window == manifest.training.n_train  # fewer rows than WINDOW
    assert ref.output.classes == manifest.classes and ref.output.edges == ()
    for part in (*ref.features.values(), ref.output):
        _check_bins(part)
    # 105 rows is a noisy reference: the calibration raises the feature thresholds above the floor
    assert all(f.threshold > THRESHOLD_FLOOR for f in ref.features.values())


def test_same_seed_same_reference_other_seed_other_thresholds(tmp_path: Path) -> None:
    first = train("house-price", tmp_path / "a", seed=3, overrides={"n_samples": 300}).manifest.drift
    again = train("house-price", tmp_path / "b", seed=3, overrides={"n_samples": 300}).manifest.drift
    other = train("house-price", tmp_path / "c", seed=4, overrides={"n_samples": 300}).manifest.drift
    assert first is not None and first == again
    assert first.window == 300
    assert other is not None and other != first


def test_the_binning_rule_is_searchsorted_right_with_open_ends() -> None:
    edges = (1.0, 2.0)
    assert bin_of(np.array([-5.0, 0.99, 1.0, 1.5, 2.0, 99.0]), edges).tolist() == [0, 0, 1, 1, 2, 2]


def test_quantile_edges_of_a_constant_feature_is_one_bin() -> None:
    assert quantile_edges(np.full(50, 7.0)) == ()
    ref = binned_reference(np.full(50, 7.0), 50, np.random.default_rng(0))
    assert ref.fractions == (1.0,) and ref.threshold == THRESHOLD_FLOOR


def test_a_threshold_is_the_99th_percentile_of_no_drift_psi() -> None:
    # Unchanged traffic: a fresh window from the training distribution stays under the threshold ~99% of the time.
    rng = np.random.default_rng(1)
    train_values = rng.normal(size=200)
    ref = build_reference(train_values[:, None], ["x"], train_values, None, seed=1).features["x"]
    assert default_window(200) == 200
    alarms = 0
    for _ in range(200):
        live = np.bincount(bin_of(rng.choice(train_values, 200), ref.edges), minlength=ref.bins) / 200
        alarms += psi(ref.fractions, live.tolist()) > ref.threshold
    assert alarms <= 6  # ~1% expected; the two-sample calibration is conservative
