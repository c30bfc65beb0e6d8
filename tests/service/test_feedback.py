"""POST /feedback against a real Postgres: stored labels, every 4xx, idempotency, conflicts, batches, an outage."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from pipelines.devtools.embedded_pg import EmbeddedPostgres
from service.labels import LabelRecord
from service.prediction_log import _from_frame
from tests.conftest import SEED_REQUESTS, start_service
from tests.loaddriver import drained, metric, wait_until

IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def predict(client: TestClient | httpx.Client, body: Any) -> str:
    rid = uuid.uuid4().hex
    assert client.post("/predict", json=body, headers={"x-request-id": rid}).status_code == 200
    return rid


def stored(pg_url: str, rid: str) -> dict[int, Any]:
    with psycopg.connect(pg_url) as conn:
        return dict(conn.execute("SELECT index, label FROM labels WHERE request_id = %s", (rid,)).fetchall())


def test_a_label_is_stored_and_the_same_label_again_is_a_200(client: TestClient, pg_url: str) -> None:
    rid = predict(client, SEED_REQUESTS[0])
    first = client.post("/feedback", json={"request_id": rid, "label": 512000.5})
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "stored", "labels": 1, "stored": 1, "unchanged": 0}
    again = client.post("/feedback", json={"request_id": rid, "index": 0, "label": 512000.5})
    assert again.status_code == 200 and again.json()["unchanged"] == 1
    assert stored(pg_url, rid) == {0: 512000.5}


def test_a_different_label_for_the_same_prediction_is_a_409_naming_both(client: TestClient) -> None:
    rid = predict(client, SEED_REQUESTS[0])
    assert client.post("/feedback", json={"request_id": rid, "label": 1}).status_code == 200
    answer = client.post("/feedback", json={"request_id": rid, "label": 2})
    assert answer.status_code == 409 and answer.json()["error"] == "label_conflict"
    assert "already labelled 1" in answer.json()["message"] and "this label is 2" in answer.json()["message"]


def test_a_batch_takes_a_label_per_instance_by_index(client: TestClient, pg_url: str) -> None:
    rid = predict(client, {"instances": SEED_REQUESTS})
    body = {"labels": [{"request_id": rid, "index": 2, "label": 3.0}, {"request_id": rid, "index": 0, "label": 1}]}
    assert client.post("/feedback", json=body).status_code == 200
    assert stored(pg_url, rid) == {0: 1, 2: 3.0}
    out_of_range = client.post("/feedback", json={"request_id": rid, "index": 3, "label": 1})
    assert out_of_range.status_code == 422
    assert "index 3 is out of range" in out_of_range.json()["message"] and "3 instances (0-2)" in out_of_range.text
    no_index = client.post("/feedback", json={"request_id": rid, "label": 1})
    assert no_index.status_code == 422 and "give `index` (0-2)" in no_index.text


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"request_id": "never-logged", "label": 1}, 404, "no logged prediction has request_id 'never-logged'"),
        ({"request_id": "{rid}", "label": "abc"}, 422, "a label is a finite number, got 'abc'"),
        ({"request_id": "{rid}", "label": True}, 422, "a label is a finite number, got True"),
        ({"request_id": "{rid}", "index": 1, "label": 1}, 422, "logged one instance (index 0)"),
        ({"request_id": "{rid}", "index": "0", "label": 1}, 422, "index"),
        ({"request_id": "{rid}", "index": -1, "label": 1}, 422, "index"),
        ({"request_id": "{rid}"}, 422, "label: Field required"),
        ({"request_id": "{rid}", "label": 1, "extra": 1}, 422, "extra"),
        ({"labels": []}, 422, "labels"),
        ([1], 422, "body"),
    ],
)
def test_bad_feedback_is_a_clear_4xx(client: TestClient, body: Any, status: int, says: str) -> None:
    rid = predict(client, SEED_REQUESTS[1])
    if isinstance(body, dict):
        body = {k: (rid if v == "{rid}" else v) for k, v in body.items()}
    answer = client.post("/feedback", json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["message"], answer.text


def test_malformed_json_is_a_400(client: TestClient) -> None:
    answer = client.post("/feedback", content=b"{", headers={"content-type": "application/json"})
    assert answer.status_code == 400


def test_a_classifiers_label_is_one_of_its_classes(make_client: Callable[..., TestClient], iris_artifact: Path) -> None:
    iris = make_client(iris_artifact)
    rid = predict(iris, IRIS)
    unknown = iris.post("/feedback", json={"request_id": rid, "label": "rose"})
    assert unknown.status_code == 422 and "unknown class 'rose'" in unknown.text and "setosa" in unknown.text
    number = iris.post("/feedback", json={"request_id": rid, "label": 1.5})
    assert number.status_code == 422 and "a label is a class name" in number.text
    assert iris.post("/feedback", json={"request_id": rid, "label": "setosa"}).status_code == 200


def test_a_regressions_prediction_takes_no_class_from_a_classifier(
    client: TestClient, make_client: Callable[..., TestClient], iris_artifact: Path
) -> None:
    rid = predict(client, SEED_REQUESTS[0])  # logged by the house-price model
    answer = make_client(iris_artifact).post("/feedback", json={"request_id": rid, "label": "setosa"})
    assert answer.status_code == 422 and "answered by a regression" in answer.text


def test_the_feedback_scope_is_required(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("reader read r-secret\nlabeller feedback,predict f-secret\n")
    client = make_client(api_keys_file=keys)
    rid = uuid.uuid4().hex
    client.post("/predict", json=SEED_REQUESTS[0], headers={"x-request-id": rid, "x-api-key": "f-secret"})
    body = {"request_id": rid, "label": 1}
    assert client.post("/feedback", json=body).status_code == 401
    assert client.post("/feedback", json=body, headers={"x-api-key": "r-secret"}).status_code == 403
    assert client.post("/feedback", json=body, headers={"x-api-key": "f-secret"}).status_code == 200


def test_spool_frames_of_every_release_read_back() -> None:
    six = ["r1", "v", "{}", "{}", 1.0, 2.0]  # written before sources were kept
    assert _from_frame(six).source == "live"  # type: ignore[union-attr]
    label = LabelRecord("r1", 2, '"setosa"', 3.0)
    assert _from_frame(label.as_frame()) == label


@pytest.mark.slow
def test_labels_acknowledged_while_postgres_is_down_are_stored_after_it_returns(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    service = start_service(house_artifact, restartable_pg.url, tmp_path / "svc", db_retry_interval_s="0.3")
    try:
        with httpx.Client(base_url=service.url, timeout=10) as http:
            rids = [predict(http, SEED_REQUESTS[0]) for _ in range(3)]
            restartable_pg.stop("immediate")
            spooled = predict(http, {"instances": SEED_REQUESTS})  # a prediction spooled too
            bodies = [{"request_id": r, "label": float(n)} for n, r in enumerate(rids)]
            bodies += [{"request_id": spooled, "index": 1, "label": 7.0}, {"request_id": "never-logged", "label": 1}]
            for body in bodies:
                answer = http.post("/feedback", json=body)
                assert answer.status_code == 202, answer.text
                assert answer.json()["status"] == "accepted" and "checked when it is replayed" in answer.text
            restartable_pg.start()
            assert wait_until(lambda: drained(service.url), 30)
            assert wait_until(lambda: metric(service.url, "modelship_prediction_log_rejected_labels_total") == 1, 10)
        for n, rid in enumerate(rids):
            assert stored(restartable_pg.url, rid) == {0: float(n)}
        assert stored(restartable_pg.url, spooled) == {1: 7.0}
        assert stored(restartable_pg.url, "never-logged") == {}
    finally:
        service.stop()


def test_live_quality_is_exported_off_the_request_path(make_client: Callable[..., TestClient], pg_url: str) -> None:
    client = make_client(quality_interval_s=0.2, quality_min_labels=1)
    rid = predict(client, SEED_REQUESTS[0])
    assert client.post("/feedback", json={"request_id": rid, "label": 1.0}).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "modelship_live_quality_labels{" not in (text := client.get("/metrics").text):
        time.sleep(0.2)
    assert 'modelship_held_out_quality{metric="rmse"' in text
    assert 'modelship_live_quality{metric="rmse"' in text
    assert 'modelship_live_quality_degraded{metric="rmse"' in text
