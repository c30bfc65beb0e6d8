"""Interleaved rounds: each case's row is the median of its rounds, never one lucky or unlucky round."""

from __future__ import annotations

from dataclasses import replace

from loadtest.bench.harness import BenchRun, CaseResult, median_result
from loadtest.bench.loadgen import LoadResult
from loadtest.bench.report import TARGETS, ratios_text, table

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
    peers = [t for t in TARGETS if "KServe" in t.name or "peer" in t.name]
    assert len(peers) == 4
    assert all(t.observe({"modelship-house": ROW}, None) is None for t in peers)  # type: ignore[arg-type]


def _row(key: str, system: str, path: str, family: str, rps: float, p99: float = 3.0) -> CaseResult:
    group = "modelship" if system == "modelship" else "peer"
    load = replace(LOAD, rps=rps, p99_ms=p99)
    return replace(ROW, key=key, group=group, system=system, path=path, family=family, load=load)


def _rows(*rows: CaseResult) -> dict[str, CaseResult]:
    return {r.key: r for r in rows}


def test_iris_is_compared_with_the_fastest_peer_path() -> None:
    target = next(t for t in TARGETS if t.name.startswith("iris req/s vs the fastest peer path"))
    rows = _rows(
        _row("modelship-iris", "modelship", "/predict", "iris-1", 1000.0),
        _row("modelship-v2-iris", "modelship", "v2", "iris-1", 800.0),
        _row("kserve-iris-1-v2", "kserve", "v2", "iris-1", 100.0),
        _row("mlserver-iris-batching", "mlserver", "v2, batching", "iris-1", 250.0),
    )
    assert target.observe(rows, None) == 4.0  # type: ignore[arg-type]


def test_each_side_is_compared_on_its_fastest_path_and_the_report_names_both() -> None:
    rps_target = next(t for t in TARGETS if t.name.startswith("batch of 100 req/s vs KServe"))
    p99_target = next(t for t in TARGETS if t.name.startswith("batch of 100 p99"))
    rows = _rows(
        _row("modelship-batch", "modelship", "/predict", "house-100", 600.0, p99=40.0),
        _row("modelship-v1-batch", "modelship", "v1", "house-100", 900.0, p99=20.0),
        _row("modelship-v2-batch", "modelship", "v2", "house-100", 800.0, p99=25.0),
        _row("kserve-house-100-v1", "kserve", "v1", "house-100", 300.0, p99=80.0),
        _row("kserve-house-100-v2", "kserve", "v2", "house-100", 75.0, p99=300.0),
        _row("kserve-house-1-v1", "kserve", "v1", "house-1", 5000.0),  # another workload: not in these ratios
    )
    assert rps_target.observe(rows, None) == 3.0  # type: ignore[arg-type]  # v1 900 / KServe v1 300
    assert p99_target.observe(rows, None) == 0.25  # type: ignore[arg-type]  # the p99 of those same two paths
    text = ratios_text(BenchRun(None, list(rows.values()), 0.0, [], {}, {}))  # type: ignore[arg-type]
    assert "batch of 100: modelship v1 vs kserve v1: req/s 900 vs 300 = 3.00x" in text
    lines = table(BenchRun(None, list(rows.values()), 0.0, [], {}, {})).splitlines()  # type: ignore[arg-type]
    starred = [line for line in lines if " * " in line and not line.startswith("path:")]
    assert len(starred) == 3  # modelship v1 (batch), KServe v1 (batch), KServe v1 (house-1)
    assert all(" v1 * " in line for line in starred)
