"""The two PSIs agree: Prometheus's recording rules over the service's counters, and the report from the log.

One service with a drift reference, its own fresh database, a real Prometheus running the stacks' rules with a
window that covers the whole run. A fixed amount of live traffic, part shifted, part as trained; then each
feature's and the output's PSI from `modelship:drift_*_psi` and from `python -m pipelines drift`'s
`drift_report` (SQL over the prediction log) must agree within 0.02. `make monitoring` (marker `monitoring`).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from infra.components import drift_rules
from model.artifact import MANIFEST
from model.manifest import Manifest
from pipelines.devtools.embedded_pg import free_port
from pipelines.devtools.monitor import local_rule_settings, prometheus_command, write_config
from pipelines.drift import drift_report
from tests.conftest import start_service
from tests.driftref import training_rows, with_reference
from tests.loaddriver import wait_until
from tests.monitoring.test_drift_drill import Prometheus, _ready

pytestmark = [pytest.mark.monitoring, pytest.mark.slow]
WINDOW = "5m"  # longer than the whole run: both sides see every live value
AGREE = 0.02


def test_the_report_and_the_promql_psi_agree_on_the_same_traffic(
    fresh_db: str, house_artifact: Path, tmp_path: Path
) -> None:
    url = fresh_db
    artifact = with_reference(house_artifact, tmp_path / "ref", window=300)
    manifest = Manifest.load(artifact / MANIFEST)
    rows = training_rows(manifest)
    largest = rows[rows[:, 0] >= np.quantile(rows[:, 0], 0.6)]
    svc = start_service(artifact, url, tmp_path / "svc")
    rules = replace(local_rule_settings(), evaluation_interval="1s", drift_window=WINDOW, drift_for="1s")
    config = write_config(tmp_path / "prom", svc.url.removeprefix("http://"), rules, scrape_interval="1s")
    listen = f"127.0.0.1:{free_port()}"
    with (tmp_path / "prometheus.log").open("wb") as out:
        proc = subprocess.Popen(prometheus_command(config, tmp_path / "prom-data", listen), stdout=out, stderr=out)
    prom = Prometheus(f"http://{listen}", proc)
    try:
        assert wait_until(lambda: _ready(prom), 60), (tmp_path / "prometheus.log").read_text()[-2000:]
        zero = "sum(modelship_drift_output_bin_total)"  # scraped at zero first, as a pod that served nothing yet
        assert wait_until(lambda: bool(prom.query(zero)), 60, interval=0.5), "Prometheus never scraped the service"
        time.sleep(2)
        rng = np.random.default_rng(11)
        names = manifest.feature_names
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            for i in range(48):  # 1,200 live values: half as trained, half of the largest houses
                source = largest if i % 2 else rows
                batch = source[rng.integers(0, len(source), 25)]
                body = {"instances": [dict(zip(names, r, strict=True)) for r in batch.tolist()]}
                assert client.post("/predict", json=body).status_code == 200
            for r in rows[rng.integers(0, len(rows), 30)].tolist():  # single-instance rows too
                assert client.post("/predict", json=dict(zip(names, r, strict=True))).status_code == 200
        total = 48 * 25 + 30
        count = drift_rules.live_count(WINDOW)

        def settled() -> bool:  # every live value scraped and the rules evaluated on it
            found = prom.query(count)
            return bool(found) and round(float(found[0]["value"][1])) >= total

        time.sleep(3)
        assert wait_until(settled, 60, interval=0.5), (prom.query(count), prom.query(zero))
        time.sleep(2)
        promql = {r["metric"]["feature"]: float(r["value"][1]) for r in prom.query(drift_rules.input_psi(WINDOW))}
        promql["__output__"] = float(prom.query(drift_rules.output_psi(WINDOW))[0]["value"][1])
        report = drift_report(url, manifest, "1h")
        logged = {feature: part.psi for feature, part in report.features.items()} | {"__output__": report.output.psi}
        print(f"\n[drift agreement] PromQL {promql}\n[drift agreement] report {logged}")
        assert report.live_count == total
        assert set(promql) == set(logged), (promql, logged)
        assert max(abs(promql[f] - logged[f]) for f in logged) <= AGREE, (promql, logged)
        assert logged["size"] > 0.1  # the shift is real, so agreeing is not agreeing on zero
    finally:
        proc.terminate()
        proc.wait(30)
        svc.stop()
