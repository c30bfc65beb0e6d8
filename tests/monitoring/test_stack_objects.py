"""What each stack declares for monitoring, and traffic scaling through prometheus-adapter (issue 11)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra import mocked_run
from infra.components.alerts import REQUESTS
from infra.config import StackConfigError
from infra.mocked_run import ProgramRun
from tests.infra.support import SECRETS, run_stack
from tests.monitoring import crds
from tests.monitoring.support import run_promtool, write_rule_file

MONITORING_KINDS = ("PodMonitor", "PrometheusRule")
RPS_ON = {"hpa.rpsPerPod": 50}


def test_dev_declares_no_monitoring_objects() -> None:
    run = run_stack("dev")
    assert not [r for r in run.resources if r.kind in MONITORING_KINDS or "monitoring" in r.name]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_scrape_their_own_namespace(stack: str) -> None:
    run = run_stack(stack)
    namespace = f"modelship-{stack}"
    pods = run.one("Deployment").inputs["spec"]["selector"]["matchLabels"]
    monitor = run.one("PodMonitor").inputs
    crds.validate(monitor)
    assert monitor["metadata"]["namespace"] == namespace
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # monitoring.selectorLabels
    assert monitor["spec"]["selector"]["matchLabels"] == pods
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    container_ports = run.one("Deployment").inputs["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert (endpoint["port"], endpoint["path"]) == (container_ports[0]["name"], "/metrics")
    rules = run.one("PrometheusRule").inputs
    crds.validate(rules)
    assert f'namespace="{namespace}"' in rules["spec"]["groups"][0]["rules"][0]["expr"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_scraper_namespace_reaches_the_metrics_port_only(stack: str) -> None:
    run = run_stack(stack)
    (policy,) = [p.inputs["spec"] for p in run.of_kind("NetworkPolicy") if p.name.endswith("-scrape")]
    assert policy["podSelector"]["matchLabels"] == run.one("Deployment").inputs["spec"]["selector"]["matchLabels"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]


def test_the_scraper_namespace_is_a_setting() -> None:
    run = run_stack("prod", {"monitoring.scraperNamespace": "observability"})
    (policy,) = [p.inputs["spec"] for p in run.of_kind("NetworkPolicy") if p.name.endswith("-scrape")]
    assert policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "observability"
    }


def hpa_pods_metric(run: ProgramRun) -> str:
    (pods,) = [m["pods"] for m in run.one("HorizontalPodAutoscaler").inputs["spec"]["metrics"] if m["type"] == "Pods"]
    name: str = pods["metric"]["name"]
    return name


def test_traffic_scaling_records_the_series_the_hpa_asks_for() -> None:
    run = run_stack("prod", RPS_ON)
    metric = hpa_pods_metric(run)
    records = [r for g in run.one("PrometheusRule").inputs["spec"]["groups"] for r in g["rules"] if "record" in r]
    (rps,) = [r for r in records if r["record"] == metric]
    assert "by (namespace, pod)" in rps["expr"], "prometheus-adapter maps the namespace and pod labels to objects"
    # CPU stays, and Pulumi leaves spec.replicas to the HPA, as without traffic scaling
    kinds = [m["type"] for m in run.one("HorizontalPodAutoscaler").inputs["spec"]["metrics"]]
    assert kinds == ["Resource", "Pods"]
    assert "spec.replicas" in run.one("Deployment").ignore_changes
    assert not [r for r in run.resources if "ScaledObject" in r.type], "one owner of the HPA: ours, not KEDA's"


def test_without_traffic_scaling_nothing_is_recorded_for_the_hpa() -> None:
    groups = run_stack("prod").one("PrometheusRule").inputs["spec"]["groups"]
    assert "modelship-autoscaling" not in [g["name"] for g in groups]


def test_the_recorded_rate_is_requests_per_second_per_pod(tmp_path: Path) -> None:
    spec = run_stack("prod", RPS_ON).one("PrometheusRule").inputs["spec"]
    write_rule_file(spec, tmp_path / "rules.yml")
    metric = hpa_pods_metric(run_stack("prod", RPS_ON))
    series = f'{REQUESTS}{{job="modelship",namespace="modelship-prod",pod="a",route="/predict",status="200"}}'
    probe = f'{REQUESTS}{{job="modelship",namespace="modelship-prod",pod="a",route="/ready",status="200"}}'
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": "0+3000x10"},  # 50 requests/s
                    {"series": probe, "values": "0+600x10"},  # probes do not count as traffic
                ],
                "promql_expr_test": [
                    {
                        "expr": metric,
                        "eval_time": "10m",
                        "exp_samples": [{"labels": f'{metric}{{namespace="modelship-prod",pod="a"}}', "value": 50}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"monitoring.latencyThresholdSeconds": "0.3"}, "must be a histogram bucket bound"),
        ({"monitoring.availabilitySlo": "100"}, "percentages below 100"),
        ({"monitoring.availabilitySlo": "three nines"}, "must be a number"),
        ({"monitoring.backlogFor": "2 minutes"}, "monitoring.backlogFor must be a duration"),
        ({"monitoring.selectorLabels": "release"}, "key=value label pairs"),
    ],
)
def test_a_monitoring_setting_that_cannot_work_is_refused(override: dict[str, str], message: str) -> None:
    config, secret_keys = mocked_run.load_stack_config("prod", override, SECRETS)
    with pytest.raises(StackConfigError, match=re.escape(message)):
        mocked_run.run_program("prod", config, secret_keys)


def test_monitoring_off_skips_the_checks() -> None:
    run = run_stack("dev", {"monitoring.latencyThresholdSeconds": "0.3"})
    assert not run.of_kind("PrometheusRule")
