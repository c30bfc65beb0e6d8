"""The durability promise: a 2xx from /predict means its record reaches Postgres exactly once."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import pytest

from pipelines.devtools.embedded_pg import EmbeddedPostgres
from tests.conftest import start_service
from tests.loaddriver import drained, drive, drive_in_thread, logged_counts, metric, wait_until

pytestmark = pytest.mark.slow


def test_postgres_outage_while_requests_flow(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    database_url = restartable_pg.url
    service = start_service(house_artifact, database_url, tmp_path / "svc", db_retry_interval_s="0.3")
    try:
        halfway = threading.Event()
        thread, box = drive_in_thread(service.url, 3000, 16, progress=lambda n: n > 800 and halfway.set())
        assert halfway.wait(60)
        restartable_pg.stop("immediate")  # a crash, not a polite shutdown
        time.sleep(3)
        restartable_pg.start()
        thread.join(120)
        result = box[0]
        print("outage drill:", result.summary())
        assert result.statuses[200] == 3000, result.summary()  # predictions kept being served
        assert wait_until(lambda: drained(service.url), 30)
        assert metric(service.url, "modelship_prediction_log_spooled_records_total") > 0  # the outage was real
        counts = logged_counts(database_url, result.acked)
        assert len(counts) == len(result.acked) and set(counts.values()) == {1}
    finally:
        service.stop()


def test_sigkill_after_acknowledgement_then_restart(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    database_url = restartable_pg.url
    workdir = tmp_path / "svc"
    service = start_service(house_artifact, database_url, workdir, db_retry_interval_s="0.3")
    restartable_pg.stop("immediate")  # acknowledged records can only be in the spool now
    result = asyncio.run(drive(service.url, 400, 8))
    assert len(result.acked) == 400, result.summary()
    service.signal(signal.SIGKILL)
    service.wait(10)
    restartable_pg.start()
    restarted = start_service(house_artifact, database_url, workdir, db_retry_interval_s="0.3")
    try:
        assert wait_until(lambda: drained(restarted.url), 30)
        counts = logged_counts(database_url, result.acked)
        print(f"sigkill drill: acked={len(result.acked)} found={len(counts)} dup={sum(c > 1 for c in counts.values())}")
        assert len(counts) == 400 and set(counts.values()) == {1}
    finally:
        restarted.stop()
