"""Specs of the HPA and the NetworkPolicies of ModelService, as plain functions over typed config."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from infra.components.database import CNPG_STATUS_PORT, POSTGRES_PORT
from infra.config import CONTAINER_PORT, AutoscalingConfig

_v2 = k8s.autoscaling.v2
_net = k8s.networking.v1
_selector = k8s.meta.v1.LabelSelectorArgs


def hpa_spec(deployment: str, a: AutoscalingConfig) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs:
    """CPU utilization always; requests per second per pod when hpa.rpsPerPod is set."""
    cpu = _v2.MetricTargetArgs(type="Utilization", average_utilization=a.cpu_utilization)
    metrics = [_v2.MetricSpecArgs(type="Resource", resource=_v2.ResourceMetricSourceArgs(name="cpu", target=cpu))]
    if a.rps_per_pod > 0:
        rps = _v2.MetricTargetArgs(type="AverageValue", average_value=str(a.rps_per_pod))
        metric = _v2.MetricIdentifierArgs(name=a.rps_metric)
        metrics.append(_v2.MetricSpecArgs(type="Pods", pods=_v2.PodsMetricSourceArgs(metric=metric, target=rps)))
    return _v2.HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=_v2.CrossVersionObjectReferenceArgs(api_version="apps/v1", kind="Deployment", name=deployment),
        min_replicas=a.min_replicas,
        max_replicas=a.max_replicas,
        metrics=metrics,
        # scale down slowly: a traffic dip should not cost warm pods
        behavior=_v2.HorizontalPodAutoscalerBehaviorArgs(
            scale_down=_v2.HPAScalingRulesArgs(stabilization_window_seconds=300)
        ),
    )


def service_ingress(service_pods: dict[str, str]) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """The service pods accept traffic on their HTTP port only, from anywhere."""
    return _net.NetworkPolicySpecArgs(
        pod_selector=_selector(match_labels=service_pods),
        policy_types=["Ingress"],
        ingress=[_net.NetworkPolicyIngressRuleArgs(ports=[_tcp(CONTAINER_PORT)])],
    )


def database_ingress(
    service_pods: dict[str, str], instances: dict[str, str], operator_namespace: str
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """The service is the only client on 5432; the other rules are what CNPG itself needs to run."""
    operator = _net.NetworkPolicyPeerArgs(
        namespace_selector=_selector(match_labels={"kubernetes.io/metadata.name": operator_namespace}),
        pod_selector=_selector(match_labels={"app.kubernetes.io/name": "cloudnative-pg"}),
    )
    return _net.NetworkPolicySpecArgs(
        pod_selector=_selector(match_labels=instances),
        policy_types=["Ingress"],
        ingress=[
            _net.NetworkPolicyIngressRuleArgs(from_=[_pods(service_pods)], ports=[_tcp(POSTGRES_PORT)]),
            # streaming replication, and the instance managers talking to each other
            _net.NetworkPolicyIngressRuleArgs(
                from_=[_pods(instances)], ports=[_tcp(POSTGRES_PORT), _tcp(CNPG_STATUS_PORT)]
            ),
            # the operator polls each instance manager's status endpoint
            _net.NetworkPolicyIngressRuleArgs(from_=[operator], ports=[_tcp(CNPG_STATUS_PORT)]),
        ],
    )


def _pods(labels: dict[str, str]) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return _net.NetworkPolicyPeerArgs(pod_selector=_selector(match_labels=labels))


def _tcp(port: int) -> k8s.networking.v1.NetworkPolicyPortArgs:
    return _net.NetworkPolicyPortArgs(port=port, protocol="TCP")
