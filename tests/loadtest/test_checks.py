"""Payloads drawn from the manifest, and the answer checks that turn a wrong 200 into a failure."""

from __future__ import annotations

import random
from typing import Any

import pytest

from loadtest.checks import (
    check_batch,
    check_history,
    check_rejected,
    check_single,
    invalid_payloads,
    random_instance,
)
from model.manifest import Manifest


def parse_manifest(served: dict[str, Any]) -> Manifest:
    """A full manifest around the parts load generation reads (the rest as `python -m model train` writes it)."""
    features = [{"unit": "u", "description": f["name"], **f} for f in served["features"]]
    return Manifest.from_dict({
        "schema_version": 1, "target": {"name": "y", "unit": "u"}, "metrics": {}, **served, "features": features,
        "primary_metric": {"name": "rmse", "higher_is_better": False},
        "training": {"recipe": served["name"], "seed": 1, "params": {}, "data_fingerprint": "sha256:0",
                     "n_train": 1, "n_test": 1},
        "runtime": {"python": "3.11", "scikit_learn": "1.5", "joblib": "1", "numpy": "2"},
        "artifact": {"file": "model.joblib", "sha256": "0" * 64}, "git_commit": None, "created_at": "",
    })  # fmt: skip


HOUSE = parse_manifest({
    "name": "house-price", "version": "house-price-abc", "task": "regression", "classes": None,
    "features": [
        {"name": "size", "type": "number", "min": 300.0, "max": 3800.5},
        {"name": "bedrooms", "type": "integer", "min": 1.0, "max": 5.0},
        {"name": "age", "type": "integer", "min": 0.0, "max": 49.0},
    ],
})  # fmt: skip
IRIS = parse_manifest({
    "name": "iris", "version": "iris-abc", "task": "classification",
    "classes": ["setosa", "versicolor", "virginica"],
    "features": [{"name": n, "type": "number", "min": 0.1, "max": 7.9}
                 for n in ("sepal_length", "sepal_width", "petal_length", "petal_width")],
})  # fmt: skip
SENT = {"size": 2500.0, "bedrooms": 3, "age": 10}


def single(**changes: Any) -> dict[str, Any]:
    body = {"prediction": 254735.42, "input": SENT, "model_version": "house-price-abc", "request_id": "r1"}
    return body | changes


def test_instances_stay_inside_the_manifest_ranges_and_types() -> None:
    rng = random.Random(0)
    for _ in range(500):
        row = random_instance(HOUSE, rng)
        assert 300.0 <= row["size"] <= 3800.5
        assert isinstance(row["bedrooms"], int) and 1 <= row["bedrooms"] <= 5
        assert isinstance(row["age"], int) and 0 <= row["age"] <= 49


def test_a_right_answer_passes() -> None:
    assert check_single(200, single(), HOUSE, SENT, "r1") is None


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, single(), "status 500"),
        (200, single(model_version="house-price-old"), "model_version"),
        (200, single(request_id="other"), "request_id"),
        (200, single(prediction="cheap"), "not a finite number"),
        (200, single(prediction=True), "not a finite number"),
        (200, single(input={"size": 1}), "input is not echoed"),
        (200, {k: v for k, v in single().items() if k != "prediction"}, "no prediction"),
        (200, None, "not a JSON object"),
    ],
)
def test_a_wrong_answer_with_any_status_is_a_failure(status: int, body: Any, reason: str) -> None:
    problem = check_single(status, body, HOUSE, SENT, "r1")
    assert problem is not None and reason in problem


def test_classification_needs_a_known_label_and_a_distribution() -> None:
    sent = random_instance(IRIS, random.Random(1))
    good = {"prediction": "setosa", "probabilities": {"setosa": 0.9, "versicolor": 0.1, "virginica": 0.0},
            "input": sent, "model_version": "iris-abc", "request_id": "r"}  # fmt: skip
    assert check_single(200, good, IRIS, sent, "r") is None
    assert "not one of" in str(check_single(200, good | {"prediction": "rose"}, IRIS, sent, "r"))
    skewed = good | {"probabilities": {"setosa": 0.9, "versicolor": 0.9, "virginica": 0.0}}
    assert "distribution" in str(check_single(200, skewed, IRIS, sent, "r"))
    assert "probabilities" in str(check_single(200, good | {"probabilities": None}, IRIS, sent, "r"))


def test_batch_needs_one_prediction_per_instance() -> None:
    body = {"predictions": [{"prediction": 1.0}] * 3, "count": 3, "model_version": "house-price-abc",
            "request_id": "b"}  # fmt: skip
    assert check_batch(200, body, HOUSE, 3, "b") is None
    assert "expected 4" in str(check_batch(200, body, HOUSE, 4, "b"))
    assert "count" in str(check_batch(200, body | {"count": 2}, HOUSE, 3, "b"))


def test_invalid_payloads_must_get_the_422_envelope() -> None:
    envelope = {"error": "validation_error", "message": "size: missing", "details": [{"field": "size"}]}
    assert check_rejected(422, envelope) is None
    assert check_rejected(200, single()) == "expected 422, got 200"
    assert check_rejected(500, envelope) == "expected 422, got 500"
    assert "details" in str(check_rejected(422, {"error": "x", "message": "y"}))


def test_every_invalid_payload_is_invalid_under_the_schema() -> None:
    kinds = dict(invalid_payloads(HOUSE, random.Random(2)))
    assert set(kinds) == {"missing-feature", "string-value", "null-value", "not-an-object", "batch-with-bad-row"}
    assert "size" not in kinds["missing-feature"]  # type: ignore[operator]
    assert kinds["string-value"]["size"] == "not a number"  # type: ignore[index]


def test_history_page_shape() -> None:
    assert check_history(200, {"predictions": [{}] * 2, "next_before": 7}, 20) is None
    assert check_history(200, {"predictions": [], "next_before": None}, 20) is None
    assert "limit" in str(check_history(200, {"predictions": [{}] * 21, "next_before": 1}, 20))
    assert "next_before" in str(check_history(200, {"predictions": [], "next_before": "x"}, 20))
