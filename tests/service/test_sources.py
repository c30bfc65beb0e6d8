"""Synthetic traffic is marked at the source: `X-Modelship-Source`, its scope, its column, its migration."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pipelines.devtools.embedded_pg import EmbeddedPostgres
from service import db
from tests.conftest import SEED_REQUESTS, start_service
from tests.loaddriver import drained, drive, logged_counts, wait_until

HOUSE = SEED_REQUESTS[0]
V1_ROWS = {"instances": [[2500, 3, 10], [1200, 2, 40]]}


def _sources(pg_url: str, request_ids: list[str]) -> dict[str, str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT request_id, source FROM predictions WHERE request_id = ANY(%s)", (request_ids,))
        return dict(rows.fetchall())


def test_a_request_without_the_header_is_live_and_one_with_it_keeps_its_source(
    client: TestClient, pg_url: str
) -> None:
    ids = {source: f"src-{source}-{uuid.uuid4().hex[:8]}" for source in ("live", "smoke", "bench-2")}
    for source, rid in ids.items():
        headers = {"x-request-id": rid} | ({} if source == "live" else {"x-modelship-source": source})
        assert client.post("/predict", json=HOUSE, headers=headers).status_code == 200
    assert _sources(pg_url, list(ids.values())) == {rid: source for source, rid in ids.items()}
    page = client.get("/predictions", params={"source": "smoke", "limit": 1000}).json()["predictions"]
    assert {row["source"] for row in page} == {"smoke"} and ids["smoke"] in {row["request_id"] for row in page}
    counted = {
        (s.labels["source"]): s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.name == "modelship_predictions_total"
    }
    assert counted.get("smoke", 0) >= 1 and counted.get("live", 0) >= 1


@pytest.mark.parametrize("value", ["Smoke", "smoke test", "", "-x", "a" * 33, "smoke/x"])
def test_a_malformed_source_is_a_400_that_names_the_header(client: TestClient, value: str) -> None:
    response = client.post("/predict", json=HOUSE, headers={"x-modelship-source": value})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_header" and body["details"][0]["field"] == "X-Modelship-Source", body
    assert client.get("/predictions", params={"source": "Bad!"}).status_code == 422


KEYS = "plain predict,read s3cret-plain\npipeline predict,read,synthetic s3cret-pipeline\n"


@pytest.mark.parametrize("path", ["/predict", "/v1/models/house-price:predict"])
def test_only_a_key_with_the_synthetic_scope_may_mark_traffic(
    make_client: Callable[..., TestClient], tmp_path: Path, pg_url: str, path: str
) -> None:
    (tmp_path / "keys").write_text(KEYS)
    client = make_client(api_keys_file=tmp_path / "keys")
    body = HOUSE if path == "/predict" else V1_ROWS
    plain, pipeline = {"x-api-key": "s3cret-plain"}, {"x-api-key": "s3cret-pipeline"}
    hidden = client.post(path, json=body, headers={**plain, "x-modelship-source": "loadcheck"})
    assert hidden.status_code == 403 and "'synthetic' scope" in hidden.text, hidden.text
    assert client.post(path, json=body, headers={**plain, "x-modelship-source": "live"}).status_code == 200
    rid = f"marked-{uuid.uuid4().hex[:8]}"
    marked = client.post(path, json=body, headers={**pipeline, "x-modelship-source": "loadcheck", "x-request-id": rid})
    assert marked.status_code == 200
    assert _sources(pg_url, [rid]) == {rid: "loadcheck"}


@pytest.mark.slow
def test_replay_of_the_spool_keeps_the_source(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    service = start_service(house_artifact, restartable_pg.url, tmp_path / "svc", db_retry_interval_s="0.3")
    try:
        restartable_pg.stop("immediate")  # acknowledged records can only be in the spool now
        result = asyncio.run(drive(service.url, 200, 8, headers={"x-modelship-source": "loadcheck"}))
        assert len(result.acked) == 200, result.summary()
        restartable_pg.start()
        assert wait_until(lambda: drained(service.url), 30)
        sources = _sources(restartable_pg.url, list(result.acked))
        assert len(sources) == 200 and set(sources.values()) == {"loadcheck"}
    finally:
        service.stop()


@pytest.mark.slow
def test_the_source_column_is_added_online_to_a_populated_table_while_serving(
    fresh_db: str, house_artifact: Path, tmp_path: Path
) -> None:
    """An older replica keeps writing while a new one migrates and serves: no acknowledged row is lost, and the
    table is not rewritten (its relfilenode, the file that holds it, is the same before and after)."""
    url = fresh_db
    first = next(sql for number, _, sql in db.migrations() if number == 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(first.encode())
        conn.execute("CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (1, '0001_predictions.sql')")
        conn.execute(
            "INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms) "
            "SELECT 'old-' || g, 'v0', '{\"size\": 1}', '{\"prediction\": 1.0}', 1 FROM generate_series(1, 50000) g"
        )
        before = conn.execute("SELECT pg_relation_filenode('predictions')").fetchone()
    written, stop = [], threading.Event()

    def older_replica() -> None:  # the INSERT an earlier release runs: no source column
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                rid = f"older-{uuid.uuid4().hex}"
                conn.execute("INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms) "
                             "VALUES (%s, 'v0', '{}', '{}', 1)", (rid,))  # fmt: skip
                written.append(rid)

    writer = threading.Thread(target=older_replica, daemon=True)
    writer.start()
    service = start_service(house_artifact, url, tmp_path / "svc", db_retry_interval_s="0.3")
    try:
        result = asyncio.run(drive(service.url, 600, 8))
        time.sleep(0.5)
        stop.set()
        writer.join(10)
        assert len(result.acked) == 600, result.summary()
        assert wait_until(lambda: drained(service.url), 30)
        counts = logged_counts(url, result.acked)
        assert len(counts) == 600 and set(counts.values()) == {1}
        with psycopg.connect(url) as conn:
            older = conn.execute("SELECT count(*) FROM predictions WHERE request_id = ANY(%s)", (written,)).fetchone()
            applied = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
            after = conn.execute("SELECT pg_relation_filenode('predictions')").fetchone()
            old_source = conn.execute("SELECT DISTINCT source FROM predictions WHERE model_version = 'v0'").fetchall()
        assert older == (len(written),) and len(written) > 0
        assert [v for (v,) in applied][:2] == [1, 2]
        assert after == before, "the migration rewrote the table"
        assert old_source == [("live",)]
    finally:
        service.stop()
