"""Retention on a real PostgreSQL with a few hundred thousand rows."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from pipelines.devtools.embedded_pg import EmbeddedPostgres
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_old_rows_go_in_bounded_batches_while_writes_continue(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg")
    url = pg.start()
    try:
        subprocess.run(
            [sys.executable, "-m", "service", "migrate"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        )
        with psycopg.connect(url, autocommit=True) as conn:
            # 300 000 rows: 240 000 older than 90 days, 60 000 recent
            conn.execute("""
                INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms, created_at)
                SELECT 'old-' || g, 'v1', '{"size": 1}', '{"prediction": 1}', 1.0,
                       now() - interval '200 days' + g * interval '1 second'
                FROM generate_series(1, 240000) g""")
            conn.execute("""
                INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms, created_at)
                SELECT 'new-' || g, 'v1', '{"size": 1}', '{"prediction": 1}', 1.0, now() - g * interval '1 second'
                FROM generate_series(1, 60000) g""")

        stop = threading.Event()
        write_times: list[float] = []

        def writer() -> None:  # the service keeps logging while retention runs
            with psycopg.connect(url, autocommit=True) as conn:
                i = 0
                while not stop.is_set():
                    began = time.perf_counter()
                    conn.execute(
                        "INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms)"
                        " VALUES (%s, 'v2', '{}', '{}', 1)",
                        (f"live-{i}",),
                    )
                    write_times.append(time.perf_counter() - began)
                    i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        out = subprocess.run(
            [sys.executable, "-m", "service.retention", "--older-than-days", "90", "--batch", "5000"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        )
        stop.set()
        thread.join()
        result = json.loads(out.stdout)
        print(f"\nretention: {result}; concurrent inserts={len(write_times)} slowest={max(write_times) * 1000:.0f}ms")
        assert result["deleted"] == 240_000 and result["batches"] == 48
        with psycopg.connect(url) as conn:
            left = conn.execute(
                "SELECT count(*) FILTER (WHERE request_id LIKE 'old-%%'),"
                " count(*) FILTER (WHERE request_id LIKE 'new-%%') FROM predictions"
            ).fetchone()
        assert left == (0, 60_000)
        assert len(write_times) > 0 and max(write_times) < 1.0, "writers were never blocked for long"
    finally:
        pg.stop()
