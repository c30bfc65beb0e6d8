"""`python -m pipelines quality` on a real log: the numbers are scikit-learn's on the same pairs, live traffic only."""

from __future__ import annotations

import json
import os
import random
import subprocess  # nosec B404
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, mean_squared_error, r2_score

from model.artifact import load_manifest
from pipelines.quality import quality
from service.app import create_app
from service.settings import Settings
from tests.conftest import SEED_REQUESTS

ROOT = Path(__file__).resolve().parents[2]
IRIS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.2, "sepal_width": 2.9, "petal_length": 4.3, "petal_width": 1.3},
    {"sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.4, "petal_width": 2.1},
]


def serve(artifact: Path, database_url: str, tmp_path: Path) -> TestClient:
    settings = Settings(model_dir=artifact, database_url=database_url, data_dir=tmp_path,
                        spool_dir=tmp_path / f"spool-{uuid.uuid4().hex[:6]}", access_log=False)  # fmt: skip
    return TestClient(create_app(settings), raise_server_exceptions=False)


def log_and_label(client: TestClient, body: Any, labels: list[Any], source: str | None = None) -> list[Any]:
    """Predict BODY, label each instance; the answers, one per instance."""
    rid = uuid.uuid4().hex
    headers = {"x-request-id": rid, **({"x-modelship-source": source} if source else {})}
    answer = client.post("/predict", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    items = got["predictions"] if "predictions" in got else [got]
    feedback = [{"request_id": rid, "index": i, "label": label} for i, label in enumerate(labels)]
    assert client.post("/feedback", json={"labels": feedback}).status_code == 200
    return list(items)


def test_regression_quality_is_scikit_learns_on_live_pairs_only(
    house_artifact: Path, fresh_db: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    truth, answered = [], []
    with serve(house_artifact, fresh_db, tmp_path) as client:
        for request in SEED_REQUESTS:  # single instances
            label = rng.uniform(2e5, 8e5)
            answered += [log_and_label(client, request, [label])[0]["prediction"]]
            truth.append(label)
        batch_labels = [rng.uniform(2e5, 8e5) for _ in SEED_REQUESTS]
        answered += [i["prediction"] for i in log_and_label(client, {"instances": SEED_REQUESTS}, batch_labels)]
        truth += batch_labels
        log_and_label(client, SEED_REQUESTS[0], [1e9], source="smoke")  # synthetic: must not count
    manifest = load_manifest(house_artifact)
    with psycopg.connect(fresh_db) as conn:
        result = quality(conn, manifest, timedelta(hours=1), tolerance=0.1, min_labels=3)
    assert result.labels == 6 and result.metric == "rmse"
    assert result.live["rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth, answered)))
    assert result.live["mae"] == pytest.approx(mean_absolute_error(truth, answered))
    assert result.live["r2"] == pytest.approx(r2_score(truth, answered))
    assert result.held_out == manifest.metrics
    assert result.degraded  # random labels are far off the model's answers


def test_classifier_quality_is_scikit_learns(iris_artifact: Path, fresh_db: str, tmp_path: Path) -> None:
    classes = list(load_manifest(iris_artifact).classes or ())
    truth = ["setosa", "virginica", "virginica", "setosa", "versicolor", "virginica"]
    answers: list[Any] = []
    with serve(iris_artifact, fresh_db, tmp_path) as client:
        answers += log_and_label(client, IRIS[0], truth[:1])
        answers += log_and_label(client, IRIS[1], truth[1:2])
        answers += log_and_label(client, {"instances": IRIS + IRIS[:1]}, truth[2:])
    answered = [a["prediction"] for a in answers]
    probabilities = [[a["probabilities"][c] for c in classes] for a in answers]
    with psycopg.connect(fresh_db) as conn:
        result = quality(conn, load_manifest(iris_artifact), timedelta(hours=1), tolerance=0.1, min_labels=100)
    assert result.labels == 6 and result.metric == "accuracy"
    assert result.live["accuracy"] == pytest.approx(accuracy_score(truth, answered))
    assert result.live["f1_macro"] == pytest.approx(f1_score(truth, answered, average="macro"))
    assert result.live["log_loss"] == pytest.approx(log_loss(truth, probabilities, labels=classes))
    assert not result.degraded  # 6 labels are fewer than min_labels


def test_the_command_prints_both_columns_and_records_the_verdict(
    house_artifact: Path, fresh_db: str, tmp_path: Path
) -> None:
    with serve(house_artifact, fresh_db, tmp_path) as client:
        answer = log_and_label(client, SEED_REQUESTS[0], [0.0])[0]["prediction"]
    record = tmp_path / "quality.json"
    args = ["quality", "--database-url", fresh_db, "--artifact", str(house_artifact), "--record", str(record)]
    done = subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))  # fmt: skip
    assert done.returncode == 0, done.stderr  # one label: never degraded under the default min_labels
    assert "1 labelled live instances" in done.stdout and "held-out" in done.stdout
    result = json.loads(record.read_text())["result"]
    assert {"model_version", "labels", "metric", "live", "held_out", "degraded"} <= set(result)
    assert result["labels"] == 1 and result["degraded"] is False
    assert result["live"]["rmse"] == pytest.approx(abs(answer))
