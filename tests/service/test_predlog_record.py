"""The prediction-log record: its stored shape for batches, old rows, the spool's frame, and the commit metric."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from psycopg.types.json import Jsonb

from service import db
from service.db import LogRecord, readable_inputs, readable_outputs
from tests.conftest import SEED_REQUESTS

NAMES = ["size", "bedrooms", "age"]  # the house-price manifest's feature order


def stored_inputs(pg_url: str, request_id: str) -> Any:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT inputs FROM predictions WHERE request_id = %s", (request_id,)).fetchone()
    assert row is not None, request_id
    return row[0]


def test_a_batch_is_stored_as_rows_in_feature_order_with_the_clients_values(client: TestClient, pg_url: str) -> None:
    rid = uuid.uuid4().hex
    shuffled = [dict(reversed(list(i.items()))) for i in SEED_REQUESTS]  # key order must not matter
    assert client.post("/predict", json={"instances": shuffled}, headers={"x-request-id": rid}).status_code == 200
    stored = stored_inputs(pg_url, rid)
    assert stored == {
        "protocol": "predict",
        "features": NAMES,
        "instances": [[2500, 3, 10], [1800, 2, 5], [3000, 4, 15]],
    }
    assert all(type(v) is int for row in stored["instances"] for v in row)  # ints stay ints, as sent


def test_a_single_instance_is_stored_as_the_object_sent(client: TestClient, pg_url: str) -> None:
    rid = uuid.uuid4().hex
    assert client.post("/predict", json=SEED_REQUESTS[0], headers={"x-request-id": rid}).status_code == 200
    assert stored_inputs(pg_url, rid) == SEED_REQUESTS[0]


def test_batch_rows_written_as_objects_by_earlier_releases_read_back_unchanged(client: TestClient, pg_url: str) -> None:
    rid = uuid.uuid4().hex
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms) "
            "VALUES (%s, 'old', %s::jsonb, '[{\"prediction\": 1.0}]', 1.0)",
            (rid, '[{"size": 2500, "bedrooms": 3, "age": 10}]'),
        )
    rows = client.get("/predictions", params={"limit": 50}).json()["predictions"]
    assert next(r for r in rows if r["request_id"] == rid)["inputs"] == [SEED_REQUESTS[0]]


def test_a_batchs_outputs_are_stored_as_columns_and_read_back_as_objects(client: TestClient, pg_url: str) -> None:
    rid = uuid.uuid4().hex
    answer = client.post("/predict", json={"instances": SEED_REQUESTS}, headers={"x-request-id": rid}).json()
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT outputs FROM predictions WHERE request_id = %s", (rid,)).fetchone()
    assert row is not None
    assert row[0] == {
        "protocol": "predict",
        "columns": {"prediction": [p["prediction"] for p in answer["predictions"]]},
    }
    assert readable_outputs(row[0]) == answer["predictions"]


def test_batches_of_every_protocol_are_turned_back_into_objects() -> None:
    v2 = {"protocol": "v2", "id": None, "features": NAMES, "instances": [[1, 2, 3]]}
    assert readable_inputs(v2) == [{"size": 1, "bedrooms": 2, "age": 3}]
    assert readable_inputs(SEED_REQUESTS[0]) == SEED_REQUESTS[0]
    old_v2 = {"prediction": [1.5], "label": ["a"]}  # written before v2 batches were stored as columns
    assert readable_outputs(old_v2) == old_v2
    classified = {"protocol": "v1", "classes": ["a", "b"],
                  "columns": {"prediction": ["b"], "probabilities": [[0.25, 0.75]]}}  # fmt: skip
    assert readable_outputs(classified) == [{"prediction": "b", "probabilities": {"a": 0.25, "b": 0.75}}]
    assert readable_inputs({"protocol": "predict", "features": NAMES, "instances": [[1, 2, 3]]}) == [
        {"size": 1, "bedrooms": 2, "age": 3}
    ]


def test_the_spool_frame_stays_the_positional_list_earlier_releases_wrote() -> None:
    record = LogRecord("r1", "v", '{"size": 1}', '{"prediction": 2.0}', 1.5, 1_700_000_000.25, "smoke")
    assert record.as_row() == ["r1", "v", '{"size": 1}', '{"prediction": 2.0}', 1.5, 1_700_000_000.25, "smoke"]
    assert LogRecord.from_row(record.as_row()) == record
    earlier = ["r1", "v", '{"size": 1}', '{"prediction": 2.0}', 1.5, 1_700_000_000.25]  # before sources were kept
    assert LogRecord.from_row(earlier).source == "live"


def test_each_group_commit_is_observed_on_metrics(client: TestClient) -> None:
    for body in SEED_REQUESTS:
        assert client.post("/predict", json=body).status_code == 200
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if not s.labels
    }
    commits = samples["modelship_prediction_log_commit_seconds_count"]
    assert commits >= 1 and samples["modelship_prediction_log_commit_seconds_sum"] > 0
    assert samples["modelship_prediction_log_commit_rows_count"] == commits
    assert samples["modelship_prediction_log_commit_rows_sum"] == 3  # one record per request, each committed once


def test_start_up_takes_its_heap_out_of_the_collectors_view(client: TestClient) -> None:
    # The batch p99 came from full collections walking the model and the imports (see app._settle_heap).
    assert client.get("/ready").status_code == 200
    assert gc.get_freeze_count() > 100_000


def test_the_architecture_docs_sql_reads_every_stored_shape_as_one_object_per_instance(pg_url: str) -> None:
    text = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    query = text.split("```sql\n", 1)[1].split("```", 1)[0].strip().rstrip(";")
    tag = uuid.uuid4().hex
    shapes = {
        "single": SEED_REQUESTS[0],
        "objects": SEED_REQUESTS[:2],  # a batch as earlier releases stored it
        "predict": {"protocol": "predict", "features": NAMES, "instances": [[2500, 3, 10], [1800, 2, 5]]},
        "v2": {"protocol": "v2", "id": "x", "features": NAMES, "instances": [[2500, 3, 10]]},
    }
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for _, _, migration in db.migrations():  # the table, even when no test before this one made it
            conn.execute(migration.encode())
        for name, inputs in shapes.items():
            conn.execute(
                "INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms) "
                "VALUES (%s, 'v', %s, '{}', 1.0)",
                (f"{tag}-{name}", Jsonb(inputs)),
            )
        found = conn.execute(
            f"SELECT request_id, instance FROM ({query}) AS q WHERE request_id LIKE %s ORDER BY request_id",
            (f"{tag}-%",),
        ).fetchall()
    by_shape: dict[str, list[Any]] = {}
    for request_id, instance in found:
        by_shape.setdefault(request_id.split("-", 1)[1], []).append(instance)
    for instances in by_shape.values():
        instances.sort(key=lambda i: -i["size"])  # SQL gives no order inside one row
    assert by_shape == {
        "single": [SEED_REQUESTS[0]],
        "objects": SEED_REQUESTS[:2],
        "predict": SEED_REQUESTS[:2],  # sizes 2500, 1800: already in the sorted order
        "v2": [SEED_REQUESTS[0]],
    }
