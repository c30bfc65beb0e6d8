"""`make bench` works: a 1-second pass over two servers. Figures are printed, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.bench.harness import BenchSettings, run_bench
from loadtest.bench.report import write_reports
from pipelines.devtools.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow


def test_bench_runs_servers_fresh_and_reports(artifacts_dir: Path, pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    settings = BenchSettings(
        out_dir=tmp_path / "bench", artifacts_dir=artifacts_dir, duration_s=1.0, warmup_s=0.5,
        connections=8, workers=1, cold_starts=1, only=frozenset({"modelship-house", "seed-style"}), rounds=2,
    )  # fmt: skip

    run = run_bench(settings, postgres=pg_server)
    text, json_path, png_path = write_reports(run, settings.out_dir)

    assert run.failures == {}
    rows = {r.key: r for r in run.results}
    assert set(rows) == {"modelship-house", "seed-style"}
    for row in rows.values():
        assert row.load.answers > 0 and row.load.errors == 0, row
        assert row.server_cpu_us > 0 and row.ready_s > 0
        # both log every prediction: one row per 2xx (warm-up included), plus at most one answer per
        # connection that was committed but not read when the load stopped
        assert row.rows_logged is not None
        assert row.answered_total <= row.rows_logged <= row.answered_total + settings.connections * 2, row
        assert len(row.rounds_rps) == 2 and row.load.rps == pytest.approx(sum(row.rounds_rps) / 2)
    assert run.cold_starts_s == []  # not selected
    report = json.loads(json_path.read_text())
    ratio = next(t for t in report["targets"] if t["target"].startswith("house 1-instance req/s vs seed"))
    assert ratio["observed"] == pytest.approx(rows["modelship-house"].load.rps / rows["seed-style"].load.rps)
    assert "seed-style Flask+gunicorn" in text and png_path.read_bytes().startswith(b"\x89PNG")
