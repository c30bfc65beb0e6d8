"""Native engines: the same arithmetic as scikit-learn, without its per-call overhead.

A RandomForestClassifier's predict_proba checks every one of its trees before asking it, ~4 ms
per call for 100 trees whatever the row count; the trees' own `tree_.predict` takes microseconds.
A StandardScaler + linear model pipeline folds into one dot product. An engine is used only after it
agrees with the estimator on probe rows spread over the manifest's feature ranges; otherwise (or
with MODELSHIP_ENGINE=sklearn) predictions go through scikit-learn itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from model.manifest import ManifestFeature

logger = logging.getLogger("modelship.engines")
Engine = Callable[[np.ndarray], np.ndarray]
PROBE_ROWS = 512
TOLERANCE = 1e-9


def _steps(estimator: Any) -> list[Any]:
    return [step for _, step in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]


def _linear(steps: list[Any]) -> Engine | None:
    *scalers, model = steps
    if type(model) not in (LinearRegression, Ridge) or np.ndim(model.coef_) != 1:
        return None
    if len(scalers) > 1 or any(type(s) is not StandardScaler for s in scalers):
        return None
    weights = np.asarray(model.coef_, dtype=np.float64)
    bias = float(model.intercept_)
    if scalers:
        scaler = scalers[0]
        mean = scaler.mean_ if scaler.with_mean else np.zeros_like(weights)
        scale = scaler.scale_ if scaler.with_std else np.ones_like(weights)
        weights, bias = weights / scale, bias - float(np.dot(mean / scale, model.coef_))
    return lambda x: x @ weights + bias


def _forest(steps: list[Any]) -> Engine | None:
    if len(steps) != 1 or type(steps[0]) is not RandomForestClassifier or steps[0].n_outputs_ != 1:
        return None
    return _ForestArrays([tree.tree_ for tree in steps[0].estimators_], int(steps[0].n_classes_)).predict_proba


class _ForestArrays:
    """Every tree of a forest in one set of flat node arrays, walked for all trees at once.

    Asking each tree in turn (`tree_.predict`) costs a Python call and an array per tree, ~8 us each,
    so about 0.8 ms per call for 100 trees however few rows. Here a row's position in every tree
    advances one level per step, as whole-array operations on a (rows, trees) array of node indices:
    as many steps as the deepest tree, about 0.1 ms for one row and 0.3 ms for 16. A leaf points to
    itself, so a row that has reached one stays there. The answer is scikit-learn's to the bit: a
    float32 feature value goes left when it is <= the float64 threshold, which for a float32 value is
    the same as <= the largest float32 not above the threshold (`at_most`); each tree's leaf counts are
    normalised to probabilities, summed in tree order and divided by the number of trees.
    """

    def __init__(self, trees: list[Any], n_classes: int) -> None:
        offsets = np.cumsum([0] + [tree.node_count for tree in trees[:-1]])
        children, feature, threshold, leaf_probability = [], [], [], []
        for offset, tree in zip(offsets.tolist(), trees, strict=True):
            nodes = np.arange(tree.node_count)
            leaf = tree.children_left == -1
            left, right = np.where(leaf, nodes, tree.children_left), np.where(leaf, nodes, tree.children_right)
            children.append(np.stack([left, right], axis=1).ravel() + offset)  # node n: [2n] left, [2n+1] right
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(tree.threshold)
            counts = tree.value[:, 0, :n_classes]
            totals = counts.sum(axis=1, keepdims=True)
            leaf_probability.append(counts / np.where(totals == 0, 1, totals))
        self.roots = offsets.astype(np.int32)
        self.children = np.concatenate(children).astype(np.int32)
        self.feature = np.concatenate(feature).astype(np.int32)
        self.at_most = _float32_at_most(np.concatenate(threshold))
        self.leaf_probability = np.concatenate(leaf_probability)
        self.depth = max(int(tree.max_depth) for tree in trees)
        self.n_trees = len(trees)

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        x32 = np.ascontiguousarray(rows, dtype=np.float32)  # the trees split on float32, as sklearn does
        count, width = x32.shape
        values = x32.ravel()
        row_start = (np.arange(count, dtype=np.int32) * width)[:, None]
        nodes = np.broadcast_to(self.roots, (count, self.n_trees))
        for _ in range(self.depth):
            go_right = values[row_start + self.feature[nodes]] > self.at_most[nodes]
            nodes = self.children[(nodes << 1) + go_right]
        # Summing over the tree axis (not the last one) adds the trees one after another, in order.
        total: np.ndarray = self.leaf_probability[nodes].sum(axis=1)
        return total / self.n_trees


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for a float32 x, x <= t exactly when x <= this."""
    with np.errstate(over="ignore"):  # beyond float32's range is +-inf, which still compares right
        nearest = threshold.astype(np.float32)
    above = nearest.astype(np.float64) > threshold
    return np.where(above, np.nextafter(nearest, np.float32(-np.inf)), nearest).astype(np.float32)


def compile_engine(estimator: Any, task: str, features: Sequence[ManifestFeature], seed: int = 0) -> Engine | None:
    """A verified native engine for `estimator`, or None to use scikit-learn."""
    steps = _steps(estimator)
    engine = _linear(steps) if task == "regression" else _forest(steps)
    if engine is None:
        return None
    rng = np.random.default_rng(seed)
    low = np.array([f.min for f in features], dtype=np.float64)
    high = np.array([f.max for f in features], dtype=np.float64)
    probe = rng.uniform(low, high, size=(PROBE_ROWS, len(features)))
    expected = estimator.predict(probe) if task == "regression" else estimator.predict_proba(probe)
    got = engine(probe)
    scale = max(1.0, float(np.max(np.abs(expected))))
    error = float(np.max(np.abs(got - expected))) / scale
    if not error <= TOLERANCE:
        logger.warning("native engine disagrees with scikit-learn (relative error %.3g); using scikit-learn", error)
        return None
    logger.info("native %s engine agrees with scikit-learn on %d probe rows (max relative error %.2g)",
                "linear" if task == "regression" else "forest", PROBE_ROWS, error)  # fmt: skip
    return engine
