"""`shadow report` and promote's gate against a real service and a real Postgres: the report's numbers are the
ones computed here, independently, from the same rows; the gate refuses and allows on them."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess  # nosec B404
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from model.train import train
from pipelines.errors import StageError
from pipelines.shadow import report, require_agreement
from tests.conftest import ROOT, LiveService
from tests.loaddriver import drive, wait_until
from tests.service.test_shadow import copies


@pytest.fixture(scope="session")
def iris_challenger(artifacts_dir: Path) -> Path:
    return train("iris", artifacts_dir / "iris-challenger", seed=3, overrides={"n_estimators": 3, "max_depth": 1}).path


@pytest.fixture(scope="session")
def house_other(artifacts_dir: Path) -> Path:
    return train("house-price", artifacts_dir / "house-other", seed=11).path


def iris_body(i: int) -> dict[str, float]:
    return {"sepal_length": 4.5 + (i % 7) * 0.5, "sepal_width": 2.2 + (i % 5) * 0.4,
            "petal_length": 1.0 + (i % 11) * 0.55, "petal_width": 0.1 + (i % 9) * 0.28}  # fmt: skip


def shadowed(live_service: Callable[..., LiveService], primary: Path, challenger: Path, n: int, **body: object) -> str:
    svc = live_service(primary, shadow_model_dir=str(challenger), shadow_sample="1")
    result = asyncio.run(drive(svc.url, n, 4, **body))  # type: ignore[arg-type]
    assert result.statuses[200] == n
    assert wait_until(lambda: copies(svc.url).get("scored") == n, 15), copies(svc.url)
    return svc.url


def joined(pg_url: str, version: str) -> list[tuple[object, object, float, float]]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            "SELECT p.outputs->'prediction', s.outputs->'prediction', p.latency_ms, s.latency_ms "
            "FROM predictions p JOIN shadow_predictions s USING (request_id) WHERE s.model_version = %s",
            (version,),
        ).fetchall()


def test_a_classifiers_report_is_what_the_rows_say(
    live_service: Callable[..., LiveService], iris_artifact: Path, iris_challenger: Path, pg_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    url = shadowed(live_service, iris_artifact, iris_challenger, 150, body=iris_body)
    version = json.loads((iris_challenger / "manifest.json").read_text())["version"]
    found = report(pg_url, challenger=version, service_url=url, chart=tmp_path / "chart.png")
    rows = joined(pg_url, version)
    matches = sum(a == b for a, b, _, _ in rows)
    assert found.agreement["instances"] == len(rows) == 150
    assert found.agreement["match_rate"] == pytest.approx(matches / 150)
    assert 0 < found.disagreement < 1  # type: ignore[operator] # a one-split, 3-tree forest misses some
    confusion: dict[str, dict[str, int]] = {}
    for a, b, _, _ in rows:
        confusion.setdefault(str(a), {}).setdefault(str(b), 0)
        confusion[str(a)][str(b)] += 1
    assert found.agreement["confusion"] == confusion
    assert found.coverage["copies"] == {"mirrored": 150, "scored": 150, "dropped": 0, "failed": 0}
    assert found.latency_ms["champion"]["max"] == pytest.approx(max(float(r[2]) for r in rows))
    assert found.errors == {"champion_5xx": 0, "challenger_failed": 0}
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(StageError, match="disagrees with the champion"):
        require_agreement(pg_url, version, 0.0, 10, 0.05)
    assert require_agreement(pg_url, version, 1.0, 10, 0.05).agreement["instances"] == 150
    with pytest.raises(StageError, match="fewer than the 1000 required"):
        require_agreement(pg_url, version, 1.0, 1000, 0.05)


def test_a_regressions_report_is_what_the_rows_say_and_the_cli_prints_it(
    live_service: Callable[..., LiveService], house_artifact: Path, house_other: Path, pg_url: str, tmp_path: Path
) -> None:
    shadowed(live_service, house_artifact, house_other, 120)
    version = json.loads((house_other / "manifest.json").read_text())["version"]
    rows = joined(pg_url, version)
    diffs = [abs(float(b) - float(a)) for a, b, _, _ in rows]  # type: ignore[arg-type]
    relative = [d / abs(float(a)) for d, (a, _, _, _) in zip(diffs, rows, strict=True)]  # type: ignore[arg-type]
    found = report(pg_url, challenger=version)
    assert found.agreement["mae"] == pytest.approx(statistics.fmean(diffs))
    assert found.agreement["abs_diff"]["max"] == pytest.approx(max(diffs))
    assert found.agreement["disagreement"] == pytest.approx(sum(r > 0.05 for r in relative) / len(rows))
    assert found.coverage["copies"] is None  # no service URL given: the log alone
    record = tmp_path / "record.json"
    env = dict(os.environ, MODELSHIP_PIPELINE_STATE_DIR=str(tmp_path / "state"))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "shadow", "report", "--database-url", pg_url, "--challenger", version,
         "--record", str(record)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"mae={statistics.fmean(diffs):.4f}" in done.stdout
    assert "quality" in done.stdout  # `quality=n/a` without a labels table, `quality_labelled=N` with one
    assert json.loads(record.read_text())["result"]["agreement"]["instances"] == 120


def test_live_quality_comes_from_labels_when_the_table_exists(
    live_service: Callable[..., LiveService], iris_artifact: Path, iris_challenger: Path, pg_url: str
) -> None:
    shadowed(live_service, iris_artifact, iris_challenger, 30, body=iris_body, prefix="labelled-")
    version = json.loads((iris_challenger / "manifest.json").read_text())["version"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        existed = conn.execute("SELECT to_regclass('labels') IS NOT NULL").fetchone() == (True,)  # /feedback's
        conn.execute("CREATE TABLE IF NOT EXISTS labels (request_id text, index int, label jsonb)")
        conn.execute(
            "INSERT INTO labels SELECT p.request_id, 0, p.outputs->'prediction' FROM predictions p JOIN "
            "shadow_predictions s USING (request_id) WHERE s.model_version = %s AND p.request_id LIKE 'labelled-%%'",
            (version,),
        )
    try:
        found = report(pg_url, challenger=version)
        quality = found.quality
        assert quality is not None and quality["labelled"] == 30 and quality["champion"] == 1.0  # labels = champion
        assert 0 <= quality["challenger"] <= 1
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DELETE FROM labels WHERE request_id LIKE 'labelled-%'" if existed else "DROP TABLE labels")


def test_start_report_stop_on_the_real_local_target(house_artifact: Path, house_other: Path) -> None:
    """The twin of the keys the stage sets: the local target's service really scores, and stops scoring."""
    import shutil
    import tempfile

    import httpx

    from pipelines import shadow
    from pipelines.deploy import deploy
    from pipelines.devtools.embedded_pg import free_port
    from pipelines.settings import PipelineSettings
    from pipelines.targets.local import LocalTarget

    base = Path(tempfile.mkdtemp(prefix="modelship-shadow-e2e-"))  # not under pytest's 0700 basetemp (see e2e)
    port = free_port()
    settings = PipelineSettings(state_dir=base / "state", local_ports={"sh": port})
    target = LocalTarget(settings)
    try:
        deploy(target, "sh", house_artifact, message="deploy")
        change = shadow.start(target, "sh", house_other, 1.0)
        url = target.select("sh").url
        assert asyncio.run(drive(url, 50, 4)).statuses[200] == 50
        assert wait_until(lambda: copies(url).get("scored") == 50, 15), copies(url)
        env = dict(os.environ, MODELSHIP_PIPELINE_STATE_DIR=str(settings.state_dir),
                   MODELSHIP_PIPELINE_LOCAL_PORTS=json.dumps({"sh": port}))  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "pipelines", "shadow", "report", "--stack", "sh"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"challenger={change.model_version}" in done.stdout and "copies_scored=50" in done.stdout
        shadow.stop(target, "sh")
        assert "modelship_shadow_copies_total" not in httpx.get(url + "/metrics").text
    finally:
        if (target.stacks_dir / "sh").exists():
            target.select("sh").destroy()
        shutil.rmtree(base, ignore_errors=True)
