"""Stage `drift` against a real Postgres and a real uvicorn: the rows are the shapes the service writes.

Traffic goes through /predict (single and batch), KServe v1 and the v2 protocol, so the SQL reads every row
shape the log holds; synthetic traffic (X-Modelship-Source) rides along to show it is left out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from model.manifest import Manifest
from model.recipes import get_recipe, resolve_params
from pipelines.cli import main
from pipelines.drift import drift_report
from pipelines.logdb import parse_window
from service.sources import SOURCE_HEADER
from tests.conftest import ROOT, LiveService

RECORD_KEYS = {"model_version", "window", "live_count", "features", "output"}
PART_KEYS = {"psi", "threshold", "drift", "count"}


def house_rows(seed: int, count: int, shift: float = 0.0) -> list[list[float]]:
    """Rows from the training distribution (another seed); SHIFT keeps only houses bigger than 2000+SHIFT."""
    recipe = get_recipe("house-price")
    x = recipe.load_data(seed, resolve_params(recipe, {"n_samples": count * 20})).x_train
    if shift:
        x = x[x[:, 0] > 2000 + shift]
    x = x[(x[:, 0] > 300) & (x[:, 0] < 3700)][:count]  # inside the range training saw: the service rejects others
    return [[round(float(r[0]), 1), int(r[1]), int(r[2])] for r in x]


def send(
    service: LiveService, manifest: Manifest, rows: list[list[float]], how: str, source: str | None = None
) -> None:
    """Send ROWS as one request the way HOW says: single (one request per row), predict, v1 or v2."""
    names = manifest.feature_names
    headers = {SOURCE_HEADER: source} if source else {}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as client:
        if how == "single":
            bodies: list[tuple[str, Any]] = [("/predict", dict(zip(names, r, strict=True))) for r in rows]
        elif how == "predict":
            bodies = [("/predict", {"instances": [dict(zip(names, r, strict=True)) for r in rows]})]
        elif how == "v1":
            bodies = [(f"/v1/models/{manifest.name}:predict", {"instances": rows})]
        else:
            tensor = {"name": "input", "shape": [len(rows), len(names)], "datatype": "FP64", "data": rows}
            bodies = [(f"/v2/models/{manifest.name}/infer", {"inputs": [tensor]})]
        for path, body in bodies:
            response = client.post(path, json=body)
            assert response.status_code == 200, response.text


def send_mixed(service: LiveService, manifest: Manifest, rows: list[list[float]], source: str | None = None) -> None:
    """20 single requests, then batches of 100 through /predict, v1 and v2 in turn."""
    send(service, manifest, rows[:20], "single", source)
    for start, how in zip(range(20, len(rows), 100), ["predict", "v1", "v2"] * 10, strict=False):
        send(service, manifest, rows[start : start + 100], how, source)


@pytest.fixture
def house(
    fresh_db: str, live_service: Callable[..., LiveService], house_artifact: Path
) -> tuple[LiveService, Manifest]:
    # fresh_db first: set up before the service, it is torn down after the service stopped
    return live_service(house_artifact, database_url=fresh_db), Manifest.load(house_artifact / "manifest.json")


def test_training_like_traffic_is_no_drift_and_a_shift_is(house: tuple[LiveService, Manifest], fresh_db: str) -> None:
    service, manifest = house
    send_mixed(service, manifest, house_rows(seed=11, count=1020))  # live: the training distribution
    send_mixed(service, manifest, house_rows(seed=12, count=1020, shift=400), source="loadcheck")  # synthetic

    live = drift_report(fresh_db, manifest, "1h")
    assert live.live_count == 1020 and live.enough and live.skipped == 0  # 20 singles + 10 batches of 100
    assert {name: part.count for name, part in live.features.items()} == dict.fromkeys(manifest.feature_names, 1020)
    assert not live.drift, live.table()
    assert all(part.psi < part.threshold for part in (*live.features.values(), live.output))

    shifted = drift_report(fresh_db, manifest, "1h", sources=["loadcheck"])
    assert shifted.live_count == 1020
    assert shifted.features["size"].drift and shifted.output.drift, shifted.table()
    assert not shifted.features["bedrooms"].drift and not shifted.features["age"].drift


def test_the_cli_prints_a_table_writes_the_record_and_the_chart(
    house: tuple[LiveService, Manifest], fresh_db: str, house_artifact: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    service, manifest = house
    send_mixed(service, manifest, house_rows(seed=13, count=1000, shift=400))
    args = ["drift", "--database-url", fresh_db, "--artifact", str(house_artifact), "--window", "30m"]
    code = main([*args, "--record", str(tmp_path / "r.json"), "--chart", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    assert code == 1, out  # drift: the stage "ran and failed", as a gate does
    assert f"drift of {manifest.version}" in out and "DRIFT" in out
    record = json.loads((tmp_path / "r.json").read_text())
    assert RECORD_KEYS <= set(record) and record["model_version"] == manifest.version and record["window"] == "30m"
    assert record["live_count"] == 1000 and set(record["features"]) == set(manifest.feature_names)
    for part in (*record["features"].values(), record["output"]):
        assert PART_KEYS <= set(part)
        assert isinstance(part["psi"], float) and isinstance(part["drift"], bool) and part["threshold"] >= 0.1
    assert record["features"]["size"]["drift"] is True and record["features"]["size"]["count"] == 1000
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_classifier_output_is_binned_by_class(
    fresh_db: str, live_service: Callable[..., LiveService], iris_artifact: Path
) -> None:
    manifest = Manifest.load(iris_artifact / "manifest.json")
    service = live_service(iris_artifact, database_url=fresh_db)
    assert manifest.drift is not None and manifest.drift.window == 105
    setosa = [[5.0, 3.4, 1.5, 0.2]] * 60 + [[5.1, 3.5, 1.4, 0.3]] * 60  # every one a setosa: the output shifts
    send(service, manifest, setosa[:10], "single")
    send(service, manifest, setosa[10:], "v1")
    report = drift_report(fresh_db, manifest, timedelta(hours=1))
    assert report.live_count == 120 and report.window == "1h"
    assert report.output.count == 120 and report.output.live == (1.0, 0.0, 0.0)
    assert report.output.drift and report.features["petal_length"].drift, report.table()


def test_too_few_values_is_no_verdict_and_older_rows_are_skipped(
    house: tuple[LiveService, Manifest], fresh_db: str
) -> None:
    service, manifest = house
    send(service, manifest, house_rows(seed=14, count=50, shift=800), "predict")
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # a row of an earlier service, in no shape read here
        conn.execute(
            "INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms) "
            "VALUES (%s, %s, %s, %s, 1)",
            ["old-1", manifest.version, json.dumps({"rows": [[1, 2, 3]]}), json.dumps({"values": [1]})],
        )
        report = drift_report(conn, manifest, "1h")
    assert report.live_count == 50 and report.skipped == 1
    assert not report.enough and not report.drift  # a big shift, but 50 values are not a verdict
    assert "too few (50 < 1000)" in report.table() and "1 logged rows in an older shape were skipped" in report.table()
    assert report.record()["enough"] is False and report.record()["features"]["size"]["enough"] is False


def test_a_manifest_without_a_reference_says_drift_is_off(
    house: tuple[LiveService, Manifest], fresh_db: str, house_artifact: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    service, manifest = house
    send(service, manifest, house_rows(seed=15, count=5), "predict")
    old = tmp_path / "old"
    shutil.copytree(house_artifact, old)
    raw = json.loads((old / "manifest.json").read_text())
    raw.pop("drift")
    (old / "manifest.json").write_text(json.dumps(raw | {"schema_version": 1}))
    code = main(["drift", "--database-url", fresh_db, "--artifact", str(old), "--record", str(tmp_path / "r.json")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines == [
        f"drift is off: manifest {manifest.version} has no drift reference (trained before schema 2); "
        "retrain to get one"
    ]
    assert json.loads((tmp_path / "r.json").read_text())["enabled"] is False


def test_a_version_without_rows_is_one_line_and_exit_2(house: tuple[LiveService, Manifest], fresh_db: str) -> None:
    service, manifest = house
    send(service, manifest, house_rows(seed=16, count=3), "predict")
    argv = ["drift", "--database-url", fresh_db, "--model-version", "house-price-000000000000"]
    done = subprocess.run([sys.executable, "-m", "pipelines", *argv], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"error: model version house-price-000000000000 has no live rows in the prediction log; versions with live "
        f"rows: {manifest.version} (--source reads other traffic)"
    ]


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800)])
def test_window_durations(text: str, seconds: int) -> None:
    assert parse_window(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["0h", "1w", "h", "1.5h", "-1h", ""])
def test_bad_windows_name_the_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30m, 1h, 2d"):
        parse_window(text)
