"""Monitoring of one stack: a PodMonitor, a PrometheusRule, the Grafana dashboard ConfigMap, and a
NetworkPolicy that admits the scraper's namespace to the metrics port.

Assumes the Prometheus Operator CRDs (monitoring.coreos.com/v1; the tests validate against v0.93.0) and a
Grafana whose dashboard sidecar watches this namespace. A PodMonitor rather than a ServiceMonitor: the
operator's pod discovery lists every running pod, ready or not, while a Service's endpoints hold a pod only
once it is ready (others move to notReadyAddresses). The pods we most need to see - not ready, or holding a
spool because Postgres is down - are exactly those, and a PodMonitor needs no Service port to name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components import alerts, dashboard
from infra.components.workload import METRICS_PATH
from infra.config import CONTAINER_PORT, MonitoringConfig

API_VERSION = "monitoring.coreos.com/v1"
PROMETHEUS_OPERATOR_VERSION = "v0.93.0"  # the CRD schemas tests/monitoring validates against
JOB = "modelship"  # the PodMonitor's jobLabel reads it from the pods' app.kubernetes.io/name


@dataclass(frozen=True)
class MonitoringArgs:
    namespace: pulumi.Input[str]
    pod_selector: dict[str, str]
    labels: dict[str, str]
    settings: MonitoringConfig
    spool_max_bytes: int
    hpa_name: str  # the HorizontalPodAutoscaler (and Deployment) name, for the replicas panel
    rps_metric: str = ""  # hpa.rpsMetric when hpa.rpsPerPod > 0: a recording rule of that name feeds the HPA


def rule_settings(
    monitoring: MonitoringConfig, namespace: str, spool_max_bytes: int, rps_metric: str
) -> alerts.RuleSettings:
    """The rules of a stack's namespace, from its settings (the drill and `make monitor` build their own)."""
    return alerts.RuleSettings(
        matchers=f'job="{JOB}",namespace="{namespace}"',
        runbook_url=monitoring.runbook_url,
        availability_slo=monitoring.availability_slo,
        latency_slo=monitoring.latency_slo,
        latency_threshold_s=monitoring.latency_threshold_s,
        oldest_unflushed_s=monitoring.oldest_unflushed_s,
        backlog_for=monitoring.backlog_for,
        spool_max_bytes=spool_max_bytes,
        spool_percent=monitoring.spool_percent,
        rollout_window=monitoring.rollout_window,
        rps_metric=rps_metric,
    )


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelship:index:Monitoring", name, None, opts)
        self._name, self._args = name, args
        m = args.settings
        labels = {**args.labels, **m.selector_labels}
        self.pod_monitor = k8s.apiextensions.CustomResource(
            f"{name}-podmonitor",
            api_version=API_VERSION,
            kind="PodMonitor",
            metadata=self._meta(name, labels),
            spec=self._pod_monitor_spec(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.rules = k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version=API_VERSION,
            kind="PrometheusRule",
            metadata=self._meta(name, labels),
            spec=pulumi.Output.from_input(args.namespace).apply(self._rules_spec),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.dashboard = k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata=self._meta(f"{name}-dashboard", {**args.labels, m.dashboard_label: "1"}),
            data=pulumi.Output.from_input(args.namespace).apply(self._dashboard_data),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.scrape_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-scrape",
            metadata=self._meta(f"{name}-scrape", args.labels),
            spec=self._scrape_policy_spec(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})

    def _meta(self, name: str, labels: dict[str, str]) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=self._args.namespace, labels=labels)

    def _pod_monitor_spec(self) -> dict[str, Any]:
        return {
            "jobLabel": "app.kubernetes.io/name",
            "selector": {"matchLabels": self._args.pod_selector},
            "podTargetLabels": ["app.kubernetes.io/version"],
            "podMetricsEndpoints": [
                {"port": "http", "path": METRICS_PATH, "interval": self._args.settings.scrape_interval}
            ],
        }

    def _rules_spec(self, namespace: str) -> dict[str, Any]:
        a = self._args
        return {"groups": alerts.rule_groups(rule_settings(a.settings, namespace, a.spool_max_bytes, a.rps_metric))}

    def _dashboard_data(self, namespace: str) -> dict[str, str]:
        a = self._args
        board = dashboard.DashboardSettings(
            f'job="{JOB}",namespace="{namespace}"', namespace, a.hpa_name, a.spool_max_bytes
        )
        return {f"modelship-{namespace}.json": dashboard.build(board, f"modelship ({namespace})")}

    def _scrape_policy_spec(self) -> k8s.networking.v1.NetworkPolicySpecArgs:
        # NetworkPolicies add up: this keeps the scraper admitted even if the service's own policy narrows.
        scraper = k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels={"kubernetes.io/metadata.name": self._args.settings.scraper_namespace}
            )
        )
        return k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self._args.pod_selector),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[scraper],
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=CONTAINER_PORT, protocol="TCP")],
                )
            ],
        )
