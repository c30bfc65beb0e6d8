"""The live drift drill: a real Prometheus scrapes a real service that counts live values against its reference.

The rules are the stacks' own (infra.components.alerts via pipelines.devtools.monitor) with a drill-sized window:
PSI over 20 s, `for: 3s`, scraped and evaluated every second, and a reference calibrated for 300 live values.
Traffic drawn from the training rows leaves ModelshipInputDrift silent; the same requests marked
`X-Modelship-Source: loadcheck` move no counter; live traffic of only the largest houses fires it for `size`
alone. The dashboard's drift panels are queried in the same Prometheus. `make monitoring` (marker `monitoring`).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.components import dashboard, drift_rules
from model.artifact import MANIFEST
from model.manifest import Manifest
from pipelines.devtools.embedded_pg import free_port
from pipelines.devtools.monitor import local_rule_settings, prometheus_command, write_config
from service.drift import INPUT_BINS
from service.sources import LOADCHECK, SOURCE_HEADER
from tests.conftest import LiveService, start_service, wait_ready
from tests.driftref import training_rows, with_reference
from tests.loaddriver import wait_until

pytestmark = [pytest.mark.monitoring, pytest.mark.slow]
ALERT = "ModelshipInputDrift"
WINDOW, FOR, MIN_SAMPLE = "20s", "3s", 300
BATCH, PAUSE_S = 25, 0.1  # about 200 live values a second: a window holds ten times the minimum sample


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=5).json()[
            "data"
        ]["result"]
        return result

    def drifting(self, state: str = "firing") -> set[str]:
        """The features ModelshipInputDrift is STATE for ("pending" counts any active alert)."""
        alerts = httpx.get(self.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return {a["labels"]["feature"] for a in alerts if a["labels"]["alertname"] == ALERT
                and (state == "pending" or a["state"] == state)}  # fmt: skip


class Traffic:
    """Batches of BATCH rows to /predict, drawn from `rows` (swap it to shift), paused when `rows` is None."""

    def __init__(self, url: str, rows: np.ndarray, names: list[str]) -> None:
        self.url, self.names = url, names
        self.rows: np.ndarray | None = rows
        self.rng = np.random.default_rng(3)
        self.sent, self.stop, self.failures = 0, threading.Event(), list[str]()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def body(self, rows: np.ndarray) -> dict[str, Any]:
        chosen = rows[self.rng.integers(0, len(rows), BATCH)]
        return {"instances": [dict(zip(self.names, r, strict=True)) for r in chosen.tolist()]}

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                rows = self.rows
                if rows is not None:
                    response = client.post("/predict", json=self.body(rows))
                    if response.status_code != 200:
                        self.failures.append(response.text[:300])
                    self.sent += BATCH
                time.sleep(PAUSE_S)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[list[Prometheus]]:
    started: list[Prometheus] = []
    yield started
    for prom in started:
        prom.proc.terminate()
        prom.proc.wait(30)


def start_prometheus(service: LiveService, workdir: Path, started: list[Prometheus]) -> Prometheus:
    rules = replace(local_rule_settings(), evaluation_interval="1s", drift_window=WINDOW, drift_for=FOR)
    config = write_config(workdir / "prom", service.url.removeprefix("http://"), rules, scrape_interval="1s")
    listen = f"127.0.0.1:{free_port()}"
    with (workdir / "prometheus.log").open("wb") as out:
        proc = subprocess.Popen(prometheus_command(config, workdir / "prom-data", listen), stdout=out, stderr=out)
    prom = Prometheus(f"http://{listen}", proc)
    started.append(prom)
    assert wait_until(lambda: _ready(prom), 60), (workdir / "prometheus.log").read_text()[-2000:]
    return prom


def _ready(prom: Prometheus) -> bool:
    try:
        return httpx.get(prom.url + "/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def counted(service: LiveService) -> float:
    text = httpx.get(service.url + "/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == f"{INPUT_BINS}_total")  # fmt: skip


def test_shifted_live_traffic_fires_input_drift_and_reference_traffic_does_not(
    pg_url: str, house_artifact: Path, tmp_path: Path, prometheus: list[Prometheus]
) -> None:
    artifact = with_reference(house_artifact, tmp_path / "ref", window=MIN_SAMPLE)
    manifest = Manifest.load(artifact / MANIFEST)
    rows = training_rows(manifest)
    largest = rows[rows[:, 0] >= np.quantile(rows[:, 0], 0.7)]  # size's top three bins only; the rest as trained
    svc = start_service(artifact, pg_url, tmp_path / "svc", wait=False)
    traffic = Traffic(svc.url, rows, manifest.feature_names)
    try:
        wait_ready(svc, timeout=120)
        prom = start_prometheus(svc, tmp_path, prometheus)
        traffic.thread.start()
        psi = f"{drift_rules.input_psi(WINDOW)}"
        assert wait_until(lambda: len(prom.query(psi)) == 3, 60), "no PSI recorded for the three features"
        healthy_until = time.monotonic() + 25  # longer than the window plus `for`
        while time.monotonic() < healthy_until:
            assert prom.drifting("pending") == set(), prom.query(psi)
            time.sleep(0.5)
        values = {r["metric"]["feature"]: float(r["value"][1]) for r in prom.query(psi)}
        assert max(values.values()) < 0.1, values
        assert prom.query(f"{drift_rules.live_count(WINDOW)} >= {MIN_SAMPLE}"), "the guard was met, yet silent"
        board = dashboard.DashboardSettings('job="modelship"', "", "modelship", 1, drift_window=WINDOW)
        for panel in dashboard.drift_panels(board):
            for q in panel.queries:
                assert prom.query(q.expr), f"dashboard panel {panel.title!r}: no data for {q.expr}"

        traffic.rows = None  # loadcheck's requests alone: served, not counted
        time.sleep(1)
        before = counted(svc)
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            for _ in range(20):
                response = client.post("/predict", json=traffic.body(largest), headers={SOURCE_HEADER: LOADCHECK})
                assert response.status_code == 200
        assert counted(svc) == before

        shifted_at = time.monotonic()
        traffic.rows = largest
        assert wait_until(lambda: prom.drifting() == {"size"}, 90, interval=0.5), (prom.query(psi), prom.drifting())
        print(f"\n[drift drill] {ALERT} firing for size {time.monotonic() - shifted_at:.1f}s after the shift; "
              f"PSI before: {values}; now: {prom.query(psi)}; live values sent: {traffic.sent}")  # fmt: skip
        assert not traffic.failures, traffic.failures[:3]
    finally:
        traffic.stop.set()
        if traffic.thread.is_alive():
            traffic.thread.join(10)
        svc.stop()
