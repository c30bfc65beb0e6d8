"""Per-second percentiles behind the latency plot."""

from __future__ import annotations

from pathlib import Path

from loadtest.timeline import AGGREGATED, Timeline, read_csv


def test_buckets_per_second_and_endpoint_round_trip_through_csv(tmp_path: Path) -> None:
    timeline = Timeline()
    for i in range(100):
        timeline.record(1000.0 + i / 100, "POST /predict", float(i), failed=i % 10 == 0)
    timeline.record(1001.5, "GET /model", 500.0, failed=False)
    timeline.write_csv(tmp_path / "t.csv")
    rows = {(b.second, b.endpoint): b for b in read_csv(tmp_path / "t.csv")}
    first = rows[(0, AGGREGATED)]
    assert (first.requests, first.failures, first.p50_ms, first.max_ms) == (100, 10, 49.0, 99.0)
    assert rows[(1, AGGREGATED)].requests == 1 and rows[(1, "GET /model")].p99_ms == 500.0
    assert (1, "POST /predict") not in rows
