"""The shadow against a real uvicorn and a real Postgres: the challenger's answers are logged under the primary's
request ids with source `shadow`, and the primary's answers are the same with or without it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from model.train import train
from tests.conftest import SEED_REQUESTS, LiveService
from tests.loaddriver import drive, wait_until

SCORED = 'modelship_shadow_copies_total{outcome="scored"}'


@pytest.fixture(scope="session")
def house_challenger(artifacts_dir: Path) -> Path:
    return train("house-price", artifacts_dir / "challenger", seed=7).path


def copies(url: str) -> dict[str, float]:
    """modelship_shadow_copies_total by outcome."""
    found = {}
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("modelship_shadow_copies_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            found[outcome] = float(line.rsplit(" ", 1)[1])
    return found


def shadow_rows(pg_url: str, ids: list[str]) -> dict[str, tuple[str, str]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT request_id, source, model_version FROM shadow_predictions WHERE request_id = ANY(%s)", (ids,)
        ).fetchall()
    return {rid: (source, version) for rid, source, version in rows}


def send(url: str, bodies: list[object], prefix: str) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return [
            client.post("/predict", json=body, headers={"x-request-id": f"{prefix}-{i}"})
            for i, body in enumerate(bodies)
        ]


BODIES: list[object] = [*SEED_REQUESTS, {"instances": SEED_REQUESTS}, {"instances": SEED_REQUESTS[:1]}]


def test_the_challengers_answers_are_logged_under_the_same_request_id_as_shadow(
    live_service: Callable[..., LiveService], house_challenger: Path, pg_url: str
) -> None:
    svc = live_service(shadow_model_dir=str(house_challenger), shadow_sample="1")
    prefix = uuid.uuid4().hex
    responses = send(svc.url, BODIES, prefix)
    assert [r.status_code for r in responses] == [200] * len(BODIES)
    assert wait_until(lambda: copies(svc.url).get("scored") == len(BODIES), 10), copies(svc.url)
    ids = [f"{prefix}-{i}" for i in range(len(BODIES))]
    rows = shadow_rows(pg_url, ids)
    challenger = httpx.get(svc.url + "/metrics").text.split('modelship_shadow_model{model_version="', 1)[1]
    assert set(rows) == set(ids)
    assert {source for source, _ in rows.values()} == {"shadow"}
    assert {version for _, version in rows.values()} == {challenger.split('"', 1)[0]}
    assert copies(svc.url) == {"mirrored": len(BODIES), "scored": len(BODIES), "dropped": 0, "failed": 0}


def test_primary_answers_are_byte_identical_with_and_without_a_shadow(
    live_service: Callable[..., LiveService], house_challenger: Path
) -> None:
    plain = live_service()
    shadowed = live_service(shadow_model_dir=str(house_challenger), shadow_sample="1")
    ignored = {"date", "x-request-id"}
    for body in [*BODIES, {"size": -1, "bedrooms": 3, "age": 10}, {"instances": []}]:
        answers = []
        for svc in (plain, shadowed):
            rid = uuid.uuid4().hex
            response = httpx.post(svc.url + "/predict", json=body, headers={"x-request-id": rid})
            headers = {k: v for k, v in response.headers.items() if k not in ignored}
            answers.append((response.status_code, headers, response.content.replace(rid.encode(), b"RID")))
        assert answers[0] == answers[1], body


def test_a_full_queue_drops_copies_counted_and_the_primary_is_fine(
    live_service: Callable[..., LiveService], house_challenger: Path
) -> None:
    svc = live_service(shadow_model_dir=str(house_challenger), shadow_sample="1", shadow_queue_max="2",
                       shadow_test_slowdown="200")  # fmt: skip
    result = asyncio.run(drive(svc.url, 400, 8))
    assert result.statuses[200] == 400
    assert wait_until(lambda: copies(svc.url)["mirrored"] == copies(svc.url)["scored"], 10)
    seen = copies(svc.url)
    assert seen["dropped"] > 0 and seen["mirrored"] + seen["dropped"] == 400, seen


def test_a_failing_challenger_is_counted_and_never_seen_by_the_client(
    live_service: Callable[..., LiveService], house_challenger: Path
) -> None:
    svc = live_service(shadow_model_dir=str(house_challenger), shadow_sample="1", shadow_test_fail="true")
    result = asyncio.run(drive(svc.url, 100, 4))
    assert result.statuses[200] == 100
    assert wait_until(lambda: copies(svc.url).get("failed") == 100, 10), copies(svc.url)


def test_a_challenger_that_cannot_be_loaded_leaves_the_primary_serving(
    live_service: Callable[..., LiveService], house_challenger: Path
) -> None:
    svc = live_service(shadow_model_dir=str(house_challenger), shadow_sample="1",
                       shadow_allowed_artifact_sha256="0" * 64)  # fmt: skip
    assert httpx.post(svc.url + "/predict", json=SEED_REQUESTS[0]).status_code == 200
    assert "no shadow: refusing to load the challenger" in svc.logs()
    assert copies(svc.url) == {}


def test_sample_picks_a_fraction_and_other_sources_are_not_copied(
    live_service: Callable[..., LiveService], house_challenger: Path
) -> None:
    svc = live_service(shadow_model_dir=str(house_challenger), shadow_sample="0.5")
    asyncio.run(drive(svc.url, 400, 8))
    with httpx.Client(base_url=svc.url) as client:
        for _ in range(50):
            client.post("/predict", json=SEED_REQUESTS[0], headers={"x-modelship-source": "smoke"})
    mirrored = copies(svc.url)["mirrored"]
    assert 140 < mirrored < 260, mirrored  # 400 live at 0.5 (binomial sd 10); the smoke requests never


def test_retention_ages_out_the_challengers_answers_with_the_champions(pg_url: str) -> None:
    from service import db
    from service.retention import purge

    async def migrated() -> None:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await db.migrate(conn)

    asyncio.run(migrated())
    old = f"aged-{uuid.uuid4().hex}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("predictions", "shadow_predictions"):
            insert = sql.SQL("INSERT INTO {} (request_id, model_version, inputs, outputs, latency_ms, created_at) "
                             "VALUES (%s, 'v', '{{}}', '{{}}', 1, now() - interval '400 days')")  # fmt: skip
            conn.execute(insert.format(sql.Identifier(table)), (old,))
    assert purge(pg_url, 365).deleted >= 2
    with psycopg.connect(pg_url) as conn:
        for table in ("predictions", "shadow_predictions"):
            count = sql.SQL("SELECT count(*) FROM {} WHERE request_id = %s").format(sql.Identifier(table))
            assert conn.execute(count, (old,)).fetchone() == (0,)
