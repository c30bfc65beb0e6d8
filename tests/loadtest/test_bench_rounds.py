"""Interleaved rounds: each case's row is the median of its rounds, never one lucky or unlucky round."""

from __future__ import annotations

from dataclasses import replace

from loadtest.bench.harness import CaseResult, median_result
from loadtest.bench.loadgen import LoadResult
from loadtest.bench.report import TARGETS

LOAD = LoadResult(
    connections=32, duration_s=10.0, answers=1000, statuses={200: 1000}, errors=0, rps=100.0, p50_ms=1.0,
    p90_ms=2.0, p99_ms=3.0, max_ms=4.0, mean_ms=1.5, loadgen_cpu_s=1.0, answered_total=1100,
)  # fmt: skip
ROW = CaseResult("modelship-house", "modelship", "modelship", "house", 1, LOAD, 50.0, 10.0, 0.5, 1100, 1100)


def _round(rps: float, p99: float, cpu: float, errors: int = 0) -> CaseResult:
    load = replace(LOAD, rps=rps, p99_ms=p99, errors=errors, statuses={200: 1000 - errors, 500: errors})
    return replace(ROW, load=load, server_cpu_us=cpu)


def test_each_figure_is_its_own_median_and_errors_add_up() -> None:
    row = median_result([_round(300, 9, 40), _round(100, 30, 90, errors=2), _round(200, 5, 60)])
    assert (row.load.rps, row.load.p99_ms, row.server_cpu_us) == (200, 9, 60)
    assert row.load.errors == 2 and row.load.statuses == {200: 2998, 500: 2}
    assert row.rounds_rps == (300, 100, 200)
    assert row.rows_logged == 3300 and row.answered_total == 3300


def test_one_round_is_reported_as_measured() -> None:
    assert median_result([ROW]) is ROW


def test_peer_targets_are_not_applicable_without_the_peers() -> None:
    kserve = [t for t in TARGETS if "KServe" in t.name or "peer" in t.name]
    assert len(kserve) == 6
    assert all(t.observe({"modelship-house": ROW}, None) is None for t in kserve)  # type: ignore[arg-type]


def test_iris_is_compared_with_the_fastest_peer() -> None:
    target = next(t for t in TARGETS if t.name.startswith("iris req/s vs the best peer"))
    rows = {
        "modelship-iris": replace(ROW, key="modelship-iris", load=replace(LOAD, rps=1000.0)),
        "kserve-iris-1-v2": replace(ROW, key="kserve-iris-1-v2", load=replace(LOAD, rps=100.0)),
        "mlserver-iris-batching": replace(ROW, key="mlserver-iris-batching", load=replace(LOAD, rps=250.0)),
    }
    assert target.observe(rows, None) == 4.0  # type: ignore[arg-type]
