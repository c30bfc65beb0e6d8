"""The live alert drill: a real Prometheus scrapes a real service under load while Postgres is stopped.

The rules are the stacks' own (infra.components.alerts via pipelines.devtools.monitor) with drill-sized thresholds:
oldest unflushed > 3 s for 5 s, scraped every 2 s and evaluated every second. The drill reads /api/v1/alerts and
records when ModelshipPredictionLogBacklog goes pending, fires, and resolves once Postgres is back; then it
checks that every acknowledged prediction is in Postgres. `make monitoring` (marker `monitoring`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import psycopg
import pytest

from pipelines.devtools.embedded_pg import EmbeddedPostgres
from pipelines.devtools.monitor import local_rule_settings, prometheus_command, write_config
from tests.conftest import LiveService, free_port, start_service, wait_ready
from tests.loaddriver import drained, drive_in_thread, logged_counts, wait_until

pytestmark = [pytest.mark.monitoring, pytest.mark.slow]
ALERT = "ModelshipPredictionLogBacklog"
RATE, SECONDS = 40, 45  # paced load spanning the outage (the spool's age grows on its own after that)


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alert_state(self) -> str:
        """'pending', 'firing', or '' when the alert is not active."""
        alerts = httpx.get(self.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        states = {a["state"] for a in alerts if a["labels"]["alertname"] == ALERT}
        return "firing" if "firing" in states else states.pop() if states else ""

    def diagnosis(self) -> str:
        """What Prometheus saw, for a failure message: the target's health and the backlog gauge."""
        targets = httpx.get(self.url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        oldest = httpx.get(
            self.url + "/api/v1/query", params={"query": "modelship_prediction_log_oldest_unflushed_seconds"}, timeout=5
        ).json()["data"]["result"]
        health = [(t["health"], t["lastError"], t["lastScrapeDuration"]) for t in targets]
        return f"targets={health} oldest_unflushed={oldest}"

    def target_up(self) -> bool:
        result = httpx.get(self.url + "/api/v1/query", params={"query": 'up{job="modelship"}'}, timeout=5).json()
        return any(r["value"][1] == "1" for r in result["data"]["result"])


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, what: str) -> float:
        at = time.monotonic() - self.t0
        self.events.append((at, what))
        return at

    def text(self) -> str:
        return "\n".join(f"  t={at:6.1f}s  {what}" for at, what in self.events)


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[[LiveService], Prometheus]]:
    started: list[Prometheus] = []

    def start(service: LiveService) -> Prometheus:
        rules = replace(local_rule_settings(), oldest_unflushed_s=3, backlog_for="5s", evaluation_interval="1s")
        config = write_config(tmp_path / "prom", service.url.removeprefix("http://"), rules, scrape_interval="2s")
        listen = f"127.0.0.1:{free_port()}"
        log = tmp_path / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(prometheus_command(config, tmp_path / "prom-data", listen), stdout=out, stderr=out)
        prom = Prometheus(f"http://{listen}", proc, log)
        started.append(prom)
        assert wait_until(lambda: _ready(prom), 60), log.read_text()[-2000:]
        return prom

    yield start
    for prom in started:
        prom.proc.terminate()
        prom.proc.wait(30)


def _ready(prom: Prometheus) -> bool:
    try:
        return httpx.get(prom.url + "/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def stop_postgres(pg: EmbeddedPostgres) -> int:
    """Stop Postgres and make sure it is down; returns the attempts it took.

    Once under `make monitoring`, EmbeddedPostgres.stop() returned without stopping the server (it stops
    only when `pg_ctl status` says running), and the drill then waited for an outage that never came.
    """
    url = pg.url  # read from postmaster.pid, which goes away with the server
    for attempt in range(1, 4):
        pg.stop("immediate")
        if wait_until(lambda: not reachable(url), 5):
            return attempt
    raise AssertionError("Postgres still accepts connections after three `pg_ctl stop -m immediate`")


def wait_for_state(prom: Prometheus, wanted: str, timeout: float) -> bool:
    return wait_until(lambda: prom.alert_state() == wanted, timeout, interval=0.25)


def test_backlog_alert_pending_firing_resolved_with_nothing_lost(
    restartable_pg: EmbeddedPostgres,
    house_artifact: Path,
    tmp_path: Path,
    prometheus_for: Callable[[LiveService], Prometheus],
) -> None:
    svc = start_service(house_artifact, restartable_pg.url, tmp_path / "svc", wait=False, db_retry_interval_s="0.5")
    try:
        wait_ready(svc, timeout=120)
        prom = prometheus_for(svc)
        assert wait_until(prom.target_up, 60), "Prometheus never scraped the service"
        thread, box = drive_in_thread(svc.url, RATE * SECONDS, 4, rate=RATE)
        load_started = time.monotonic()
        assert wait_until(lambda: httpx.get(svc.url + "/metrics").text.count("model_version") > 0, 30)
        time.sleep(3)
        assert prom.alert_state() == "", "the backlog alert is silent while Postgres is up"
        timeline = Timeline()
        attempts = stop_postgres(restartable_pg)
        timeline.mark(
            f"Postgres stopped ({attempts} attempt(s)), load running for {time.monotonic() - load_started:.1f}s"
        )
        assert wait_for_state(prom, "pending", 90), prom.diagnosis()
        timeline.mark(f"{ALERT} pending")
        assert wait_for_state(prom, "firing", 60), prom.diagnosis()
        timeline.mark(f"{ALERT} firing")
        restartable_pg.start()
        timeline.mark("Postgres started")
        assert wait_for_state(prom, "", 60), "the alert resolves once the spool is replayed"
        timeline.mark(f"{ALERT} resolved (no longer active)")
        thread.join(SECONDS + 60)
        result = box[0]
        timeline.mark(f"load done: sent={result.sent} acknowledged={len(result.acked)}")
        assert wait_until(lambda: drained(svc.url), 60)
        lost = len(result.acked) - len(logged_counts(restartable_pg.url, result.acked))
        timeline.mark(f"spool drained; acknowledged records lost = {lost}")
        print(f"\n[alert drill] timeline (t=0 when Postgres stopped):\n{timeline.text()}")
        assert lost == 0
        assert result.acked, "the service kept acknowledging predictions during the drill"
    finally:
        svc.stop()
