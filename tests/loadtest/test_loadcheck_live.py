"""The Locust gate end to end: a real uvicorn service, a real PostgreSQL, real Locust processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from loadtest.__main__ import main as loadtest_cli
from loadtest.run import run_loadcheck

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


def predictions_logged(pg_url: str, version: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM predictions WHERE model_version = %s", (version,)).fetchone()
    return int(row[0]) if row else 0


def test_local_profile_passes_against_a_real_service(
    live_service: Callable[..., Any], pg_url: str, house_artifact: Path, tmp_path: Path
) -> None:
    service = live_service(house_artifact)
    version = house_artifact.name
    logged_before = predictions_logged(pg_url, version)

    result = run_loadcheck(service.url, "local", tmp_path / "out", duration_s=10)

    assert result.passed, result.verdict_text
    assert result.exit_code == 0 and result.failed_checks == []
    assert result.model_version == version
    summary = json.loads(result.summary_path.read_text())
    by_name = {f"{e['method']} {e['name']}": e for e in summary["endpoints"]}
    for endpoint in ("POST /predict", "POST /predict [batch]", "POST /predict [invalid]", "GET /predictions"):
        assert by_name[endpoint]["requests"] > 0, endpoint
        assert by_name[endpoint]["failures"] == 0, summary["errors"]
    assert by_name["POST /predict"]["requests"] > by_name["POST /predict [batch]"]["requests"]
    assert summary["profile"]["name"] == "local" and summary["profile"]["duration_s"] == 10
    assert summary["totals"]["requests"] == sum(e["requests"] for e in summary["endpoints"])
    assert 1 <= summary["totals"]["p50_ms"] <= summary["totals"]["p95_ms"] <= summary["totals"]["p99_ms"]
    assert summary["verdict"]["passed"] is True and summary["exit_code"] == 0
    # every acknowledged prediction is in Postgres (a 2xx means durable)
    acknowledged = by_name["POST /predict"]["requests"] + by_name["POST /predict [batch]"]["requests"]
    assert predictions_logged(pg_url, version) - logged_before >= acknowledged
    assert "locust" in result.html_path.read_text()[:5000].lower()
    assert result.plot_path.read_bytes().startswith(PNG)
    assert result.verdict_text.startswith("modelship load check: PASS")
    assert result.timeseries_path.read_text().startswith("second,endpoint,requests")


def test_an_impossible_slo_fails_the_gate_with_exit_code_1(
    live_service: Callable[..., Any], iris_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        "[profiles.impossible]\nusers = 6\nspawn_rate = 6\nduration_s = 4\np95_ms = 2000\np99_ms = 4000\n"
        "max_failure_ratio = 0.0\nmin_rps = 1000000\n"
    )
    keys = tmp_path / "keys"
    keys.write_text("loadtest predict,read,synthetic s3cret-key\n")
    service = live_service(iris_artifact, api_keys_file=str(keys))
    out = tmp_path / "out"
    monkeypatch.setenv("MODELSHIP_LOADTEST_API_KEY", "s3cret-key")  # a 401 anywhere would fail a check

    code = loadtest_cli(["--url", service.url, "--profile", "impossible", "--out", str(out),
                         "--profiles-file", str(profiles)])  # fmt: skip

    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["version"] == iris_artifact.name  # the same locustfile drives a classifier
    failed = [c["name"] for c in summary["verdict"]["checks"] if not c["passed"]]
    # only the throughput is impossible: iris answers (labels, probabilities, 422s) were all right, and
    # the API key reached every endpoint
    assert failed == ["throughput"], summary["errors"]
    assert summary["totals"]["requests"] > 0 and summary["totals"]["failures"] == 0
    assert (out / "verdict.txt").read_text().startswith("modelship load check: FAIL")
    assert (out / "report.html").stat().st_size > 0 and (out / "latency.png").read_bytes().startswith(PNG)
