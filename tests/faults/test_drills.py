"""Fault drills: real uvicorn, real PostgreSQL, load running, faults injected, every id counted.

Each drill sends a bounded load with unique request ids, then compares the acknowledged ids (2xx)
with the rows in Postgres, and prints what it counted.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from loadtest.stats import percentile
from pipelines.devtools.embedded_pg import EmbeddedPostgres
from service.spool import Spool
from tests.conftest import LiveService, start_service
from tests.faults.proxy import DelayProxy
from tests.loaddriver import LoadResult, drained, drive, drive_in_thread, logged_counts, metric, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def verify(name: str, database_url: str, result: LoadResult) -> None:
    counts = logged_counts(database_url, result.acked)
    lost = len(result.acked) - len(counts)
    duplicated = sum(1 for n in counts.values() if n > 1)
    print(
        f"\n[{name}] requests={result.sent} acknowledged={len(result.acked)} rows_found={len(counts)} "
        f"lost={lost} duplicated={duplicated} | {result.summary()}"
    )
    assert lost == 0 and duplicated == 0


def test_postgres_down_20s_mid_load(restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path) -> None:
    svc = start_service(house_artifact, restartable_pg.url, tmp_path / "svc", db_retry_interval_s="0.5")
    try:
        started = threading.Event()
        thread, box = drive_in_thread(svc.url, 4000, 8, rate=130, progress=lambda n: n > 600 and started.set())
        assert started.wait(60)
        restartable_pg.stop("immediate")
        down_at = time.monotonic()
        time.sleep(20)
        assert httpx.get(svc.url + "/ready").status_code == 200  # the spool keeps it ready
        restartable_pg.start()
        print(f"\npostgres was down {time.monotonic() - down_at:.1f}s")
        thread.join(120)
        result = box[0]
        assert result.statuses[200] == result.sent, "predictions must keep being served while Postgres is down"
        assert wait_until(lambda: drained(svc.url), 60)
        assert metric(svc.url, "modelship_prediction_log_replayed_records_total") > 1000
        verify("postgres down 20s", restartable_pg.url, result)
    finally:
        svc.stop()


def test_sigkill_mid_load_then_restart(restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "svc"
    svc = start_service(house_artifact, restartable_pg.url, workdir)
    killed = threading.Event()

    def kill_at(n: int) -> None:
        if n > 1500 and not killed.is_set():
            killed.set()
            svc.signal(signal.SIGKILL)

    first = asyncio.run(drive(svc.url, 3000, 16, progress=kill_at, timeout=5))
    svc.wait(10)
    restarted = start_service(house_artifact, restartable_pg.url, workdir)
    try:
        second = asyncio.run(drive(restarted.url, 1500, 16))
        assert wait_until(lambda: drained(restarted.url), 30)
        combined = LoadResult(
            sent=first.sent + second.sent,
            acked=first.acked | second.acked,
            statuses=first.statuses + second.statuses,
            errors=first.errors + second.errors,
            latencies=first.latencies + second.latencies,
        )
        assert first.errors, "the kill happened mid-load, so some requests saw it"
        verify("sigkill mid-load", restartable_pg.url, combined)
    finally:
        restarted.stop()


def test_sigterm_mid_load_completes_in_flight_and_flushes(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    svc = start_service(house_artifact, restartable_pg.url, tmp_path / "svc", shutdown_grace_s="10")
    sent_term = threading.Event()
    term_at: list[float] = []

    def term(n: int) -> None:
        if n > 1500 and not sent_term.is_set():
            sent_term.set()
            term_at.append(time.monotonic())
            svc.signal(signal.SIGTERM)

    result = asyncio.run(drive(svc.url, 3000, 16, progress=term, timeout=15))
    code = svc.wait(30)
    exit_after = time.monotonic() - term_at[0]
    print(f"\nexit code {code} {exit_after:.2f}s after SIGTERM; client errors {dict(result.errors)}")
    # uvicorn re-raises the captured SIGTERM once its graceful shutdown is done, hence -15
    assert code in (0, -signal.SIGTERM) and exit_after < 10
    assert "Application shutdown complete" in svc.logs()
    assert not result.statuses.keys() - {200}, "every request that got an answer got a complete 200"
    assert "prediction log flushed" in svc.logs()
    verify("sigterm mid-load", restartable_pg.url, result)


def test_spool_full_refuses_with_retry_after_and_recovers(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    svc = start_service(
        house_artifact, restartable_pg.url, tmp_path / "svc", spool_max_bytes="20000", db_retry_interval_s="0.3"
    )
    try:
        restartable_pg.stop("immediate")
        result = asyncio.run(drive(svc.url, 600, 4))
        assert result.statuses[503] > 0 and result.retry_after_seen
        ready = httpx.get(svc.url + "/ready")
        assert ready.status_code == 503 and "spool is full" in " ".join(ready.json()["reasons"])
        restartable_pg.start()
        assert wait_until(lambda: httpx.get(svc.url + "/ready").status_code == 200, 30), "recovers by itself"
        after = asyncio.run(drive(svc.url, 200, 4))
        assert after.statuses[200] == 200
        assert wait_until(lambda: drained(svc.url), 30)
        result.acked |= after.acked
        result.sent += after.sent
        print(f"\nspool full: refused={result.statuses[503]} with Retry-After")
        verify("spool full", restartable_pg.url, result)
    finally:
        svc.stop()


def test_slow_postgres_degrades_within_bounds(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    with DelayProxy(restartable_pg.port, one_way_delay_s=0.1) as proxy:  # ~200 ms per round trip
        slow_url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        svc = start_service(
            house_artifact,
            slow_url,
            tmp_path / "svc",
            db_write_timeout_s="1.0",
            db_connect_timeout_s="3",
            request_timeout_s="5",
        )
        try:
            result = asyncio.run(drive(svc.url, 2000, 16, timeout=15))
            assert wait_until(lambda: drained(svc.url), 60)
        finally:
            svc.stop()
    worst = max(result.latencies)
    print(f"\nslow postgres: worst latency {worst * 1000:.0f} ms (request timeout 5000 ms)")
    assert result.statuses[200] == 2000
    assert worst < 5.0, "no request hangs past its timeout"
    verify("slow postgres", restartable_pg.url, result)


def test_corrupt_spool_keeps_complete_records_and_starts(
    restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "svc" / "spool"
    spool = Spool(spool_dir)
    now = time.time()
    records = [[f"corrupt-{i}", "house-price-x", "{}", "{}", 1.0, now] for i in range(250)]
    for start in range(0, 250, 50):
        spool.append(records[start : start + 50])
    spool.rotate()
    segment = next(spool_dir.glob("*.spool"))
    with segment.open("r+b") as f:  # a crash mid-append: the last frame is cut short
        f.truncate(segment.stat().st_size - 17)
    svc: LiveService = start_service(house_artifact, restartable_pg.url, tmp_path / "svc")
    try:
        assert wait_until(lambda: drained(svc.url), 30)
        damaged = metric(svc.url, "modelship_prediction_log_spool_damaged_bytes_total")
        assert damaged > 0 and "damaged tail" in svc.logs()
        counts = logged_counts(restartable_pg.url, {r[0] for r in records})
        print(f"\n[corrupt spool] complete records recovered={len(counts)} of 250 written; damaged bytes={damaged:.0f}")
        assert len(counts) == 200 and set(counts.values()) == {1}
        assert list((spool_dir / "damaged").iterdir()), "the damaged segment is kept for inspection"
    finally:
        svc.stop()


@pytest.mark.parametrize(
    ("fault", "settings"),
    [("challenger 10x slower", {"shadow_test_slowdown": "10"}), ("challenger raises", {"shadow_test_fail": "true"})],
)
def test_a_slow_or_failing_shadow_leaves_the_primary_alone(
    fault: str, settings: dict[str, str], restartable_pg: EmbeddedPostgres, house_artifact: Path, tmp_path: Path
) -> None:
    """The same paced load without a shadow, then with a challenger at sample 1.0 made 10x slower (its scoring
    takes ten times as long, in its worker thread) or raising: every answer a 200 and every record kept. Both p99s are
    printed, not asserted: on this 2-core machine the challenger's work and its second log (Postgres on the same
    cores) move the primary's p99 by more than the 10% the design aims at (docs/shadow.md gives the figures)."""
    latencies = {}
    for name, extra in (("none", {}), (fault, {"shadow_model_dir": str(house_artifact), "shadow_sample": "1",
                                               "shadow_queue_max": "64", **settings})):  # fmt: skip
        svc = start_service(house_artifact, restartable_pg.url, tmp_path / name.replace(" ", "-"), **extra)
        try:
            asyncio.run(drive(svc.url, 300, 8))  # warm-up
            result = asyncio.run(drive(svc.url, 3000, 8, rate=300))
            copies = {o: metric(svc.url, f'modelship_shadow_copies_total{{outcome="{o}"}}')
                      for o in ("mirrored", "scored", "dropped", "failed")} if extra else {}  # fmt: skip
        finally:
            svc.stop()
        assert result.statuses[200] == result.sent == 3000, result.summary()
        verify(f"shadow: {name}", restartable_pg.url, result)
        latencies[name] = percentile(result.latencies, 0.99)
        print(f"[shadow: {name}] p99={latencies[name] * 1000:.1f}ms copies={copies}")
    print(f"[shadow: {fault}] primary p99 {latencies['none'] * 1000:.1f} ms without a shadow, "
          f"{latencies[fault] * 1000:.1f} ms with it")
