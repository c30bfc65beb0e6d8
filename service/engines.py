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
    forest = steps[0]
    trees = [tree.tree_ for tree in forest.estimators_]
    n_classes = int(forest.n_classes_)

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        x32 = np.ascontiguousarray(rows, dtype=np.float32)  # the trees split on float32, as sklearn does
        total = np.zeros((len(x32), n_classes))
        for tree in trees:
            proba = tree.predict(x32)[:, :n_classes]
            total += proba / proba.sum(axis=1, keepdims=True)
        return total / len(trees)

    return predict_proba


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
