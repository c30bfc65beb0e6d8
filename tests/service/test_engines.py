"""Native engines agree with scikit-learn, and are refused when they would not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import Pipeline

from model.manifest import Manifest
from service.engines import compile_engine


def load(artifact: Path) -> tuple[Any, Manifest]:
    return joblib.load(artifact / "model.joblib"), Manifest.load(artifact / "manifest.json")


@pytest.mark.parametrize("name", ["house_artifact", "iris_artifact"])
def test_engine_matches_scikit_learn_on_fresh_rows(name: str, request: pytest.FixtureRequest) -> None:
    estimator, manifest = load(request.getfixturevalue(name))
    engine = compile_engine(estimator, manifest.task, manifest.features)
    assert engine is not None
    rows = np.random.default_rng(99).uniform(
        [f.min for f in manifest.features],
        [f.max for f in manifest.features],
        size=(300, 4 if "iris" in name else 3),
    )
    expected = estimator.predict(rows) if manifest.task == "regression" else estimator.predict_proba(rows)
    assert np.allclose(engine(rows), expected, rtol=0, atol=1e-9 * max(1, np.abs(expected).max()))


def test_engine_is_refused_when_it_disagrees(house_artifact: Path) -> None:
    estimator, manifest = load(house_artifact)
    original = estimator.predict
    estimator.predict = lambda x: original(x) + 1.0  # an estimator that no longer does what its parts say
    assert compile_engine(estimator, manifest.task, manifest.features) is None


def test_unsupported_models_use_scikit_learn(house_artifact: Path) -> None:
    _, manifest = load(house_artifact)
    rng = np.random.default_rng(0)
    model = Pipeline([("gbr", GradientBoostingRegressor(n_estimators=5))]).fit(rng.random((50, 3)), rng.random(50))
    assert compile_engine(model, "regression", manifest.features) is None


def test_service_reports_its_engine_and_answers_the_same_either_way(
    make_client: Callable[..., TestClient], iris_artifact: Path
) -> None:
    body = {
        "instances": [
            {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5},
            {"sepal_length": 6.3, "sepal_width": 2.8, "petal_length": 5.1, "petal_width": 1.5},
        ]
    }
    answers = {}
    for engine in ("auto", "sklearn"):
        client = make_client(iris_artifact, engine=engine)
        answers[client.get("/ready").json()["engine"]] = client.post("/predict", json=body).json()["predictions"]
    assert set(answers) == {"native", "scikit-learn"}
    native, reference = answers["native"], answers["scikit-learn"]
    assert [a["prediction"] for a in native] == [b["prediction"] for b in reference]
    for a, b in zip(native, reference, strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


def test_forest_engine_is_bitwise_scikit_learn_on_every_split_threshold(iris_artifact: Path) -> None:
    """A row sitting exactly on a split goes left in both, and probabilities tie exactly where sklearn's do."""
    estimator, manifest = load(iris_artifact)
    engine = compile_engine(estimator, manifest.task, manifest.features)
    assert engine is not None
    trees = [tree.tree_ for tree in estimator.steps[-1][1].estimators_]
    splits = [(int(f), t) for tree in trees for f, t in zip(tree.feature, tree.threshold, strict=True) if f >= 0]
    rng = np.random.default_rng(7)
    rows = rng.uniform([f.min for f in manifest.features], [f.max for f in manifest.features], (len(splits), 4))
    for row, (feature, threshold) in zip(rows, splits, strict=True):
        row[feature] = threshold
    for batch in (rows[:1], rows[:16], rows):
        assert np.array_equal(engine(batch), estimator.predict_proba(batch))


def test_float32_at_most_keeps_the_float64_comparison() -> None:
    from service.engines import _float32_at_most

    below = np.float32(2.5)
    above = np.nextafter(below, np.float32(np.inf))
    thresholds = np.array([2.5, (float(below) + float(above)) / 2, float(above) - 1e-12, 1e300, -2.0])
    at_most = _float32_at_most(thresholds)
    for x in (below, above, np.float32(-2.0), np.float32(3.4e38)):
        assert ((x <= at_most) == (x.astype(np.float64) <= thresholds)).all()
