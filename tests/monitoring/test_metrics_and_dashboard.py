"""Every metric the rules and the dashboard read is exported by a live service; every panel's PromQL parses.

The dashboard is the one prod declares (its ConfigMap, as the Grafana sidecar reads it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.components.alerts import LATENCY, le_label
from infra.components.dashboard import KUBE_STATE_METRICS
from pipelines.devtools.monitor import local_rule_settings
from tests.conftest import LiveService, start_service, wait_ready
from tests.driftref import with_reference
from tests.infra.support import run_stack
from tests.loaddriver import BODY
from tests.monitoring.support import (
    PROMETHEUS_SERIES,
    metric_names,
    rendered_rules,
    rule_metrics,
    run_promtool,
    write_rule_file,
)

DASHBOARD_LABEL = "grafana_dashboard"  # Pulumi.yaml monitoring.dashboardLabel default


def dashboard(stack: str = "prod") -> dict[str, Any]:
    (config_map,) = [c for c in run_stack(stack).of_kind("ConfigMap") if c.name.endswith("-dashboard")]
    assert config_map.inputs["metadata"]["labels"][DASHBOARD_LABEL] == "1"
    (board,) = config_map.inputs["data"].values()
    parsed: dict[str, Any] = json.loads(board)
    return parsed


def panel_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def exported(service: LiveService) -> tuple[set[str], list[dict[str, str]]]:
    """Sample names and label sets on /metrics after one prediction (so the labelled series exist)."""
    assert httpx.post(service.url + "/predict", json=BODY, timeout=10).status_code == 200
    text = httpx.get(service.url + "/metrics", timeout=10).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return {s.name for s in samples}, [dict(s.labels, __name__=s.name) for s in samples]


@pytest.mark.slow
def test_every_metric_of_the_rules_and_the_dashboard_is_exported(
    pg_url: str, house_artifact: Path, tmp_path: Path
) -> None:
    artifact = with_reference(house_artifact, tmp_path / "with-reference")  # the drift series need one
    service = start_service(artifact, pg_url, tmp_path / "svc", wait=False)
    try:
        wait_ready(service, timeout=120)  # a shared 2-core machine: the fixture's 30 s is not always enough
        names, samples = exported(service)
    finally:
        service.stop()
    used_by_rules = rule_metrics(rendered_rules("prod"))
    used_by_panels = {m for e in panel_exprs() for m in metric_names(e)} - recorded_series()
    missing = (used_by_rules | used_by_panels) - names - PROMETHEUS_SERIES - set(KUBE_STATE_METRICS)
    assert not missing, f"not exported by the service: {sorted(missing)}"
    assert used_by_rules >= {"modelship_prediction_log_oldest_unflushed_seconds", "modelship_http_requests_total"}
    # the latency SLO reads one bucket by its exact `le` label: it must be a bucket the service writes
    bound = le_label(local_rule_settings().latency_threshold_s)
    assert any(s["__name__"] == f"{LATENCY}_bucket" and s["le"] == bound for s in samples), bound


def recorded_series() -> set[str]:
    return {r["record"] for g in rendered_rules("prod")["groups"] for r in g["rules"] if "record" in r}


def test_the_only_foreign_metrics_are_prometheus_and_kube_state_metrics() -> None:
    recorded = recorded_series()
    foreign = {m for e in panel_exprs() for m in metric_names(e) if not m.startswith("modelship_")} - recorded
    assert foreign == PROMETHEUS_SERIES | set(KUBE_STATE_METRICS)
    assert {m for m in rule_metrics(rendered_rules("prod")) if not m.startswith("modelship_")} == PROMETHEUS_SERIES
    read_from_rules = {m for e in panel_exprs() for m in metric_names(e)} & recorded
    assert read_from_rules >= {"modelship:drift_input_psi:1h", "modelship:drift_live_fraction:1h"}


@pytest.mark.needs_engine
def test_every_panel_query_parses(tmp_path: Path) -> None:
    exprs = panel_exprs()
    rules = [{"record": f"modelship:dashboard_panel_query:{i}", "expr": e} for i, e in enumerate(exprs)]
    path = write_rule_file({"groups": [{"name": "dashboard", "rules": rules}]}, tmp_path / "panels.yml")
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_the_dashboard_shows_what_issue_11_asks_for() -> None:
    titles = " | ".join(p["title"] for p in dashboard()["panels"]).lower()
    for words in ("route and status", "error ratio", "latency quantiles", "model version", "queue depth",
                  "spool bytes", "oldest unflushed", "database writes", "replicas against the hpa",
                  "database write latency", "drift: psi per feature",
                  "drift: live bin fractions against the reference"):  # fmt: skip
        assert words in titles
    assert all(p["datasource"]["type"] == "prometheus" for p in dashboard()["panels"])
