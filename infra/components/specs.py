"""Specs of the HPA, the NetworkPolicies and the retention CronJob of ModelService, as plain functions."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from infra.components.database import CNPG_STATUS_PORT, POSTGRES_PORT
from infra.config import CONTAINER_PORT, AutoscalingConfig, RetentionConfig

# The retention CronJob. On the nightly default schedule a run deletes about one day's rows.
RETENTION_TIME_ZONE = "Etc/UTC"  # so retention.schedule means the same on every cluster
RETENTION_STARTING_DEADLINE_S = 3600  # a run not started within an hour of its time is skipped, not piled up
RETENTION_ACTIVE_DEADLINE_S = 3600  # a run that hangs (a lock, a dead connection) is killed after an hour
RETENTION_BACKOFF_LIMIT = 2  # each batch is its own transaction, so a retry resumes where a failure stopped
RETENTION_SUCCESSFUL_HISTORY = 3
RETENTION_FAILED_HISTORY = 3

_v2 = k8s.autoscaling.v2
_net = k8s.networking.v1
_selector = k8s.meta.v1.LabelSelectorArgs


def hpa_spec(deployment: str, autoscaling: AutoscalingConfig) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs:
    """CPU utilization always; requests per second per pod when hpa.rpsPerPod is set."""
    cpu = _v2.MetricTargetArgs(type="Utilization", average_utilization=autoscaling.cpu_utilization)
    metrics = [_v2.MetricSpecArgs(type="Resource", resource=_v2.ResourceMetricSourceArgs(name="cpu", target=cpu))]
    if autoscaling.rps_per_pod > 0:
        rps = _v2.MetricTargetArgs(type="AverageValue", average_value=str(autoscaling.rps_per_pod))
        metric = _v2.MetricIdentifierArgs(name=autoscaling.rps_metric)
        metrics.append(_v2.MetricSpecArgs(type="Pods", pods=_v2.PodsMetricSourceArgs(metric=metric, target=rps)))
    return _v2.HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=_v2.CrossVersionObjectReferenceArgs(api_version="apps/v1", kind="Deployment", name=deployment),
        min_replicas=autoscaling.min_replicas,
        max_replicas=autoscaling.max_replicas,
        metrics=metrics,
        # scale down slowly: autoscaling traffic dip should not cost warm pods
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


def retention_command(retention: RetentionConfig) -> list[str]:
    """`python -m service.retention` as the image runs it (service/retention.py, `main`)."""
    days, batch = str(retention.days), str(retention.batch)
    return ["python", "-m", "service.retention", "--older-than-days", days, "--batch", batch]


def retention_cronjob_spec(
    retention: RetentionConfig, pod: k8s.core.v1.PodTemplateSpecArgs
) -> k8s.batch.v1.CronJobSpecArgs:
    """One run at a time (Forbid): two runs would only contend for the same rows."""
    job = k8s.batch.v1.JobSpecArgs(
        backoff_limit=RETENTION_BACKOFF_LIMIT,
        active_deadline_seconds=RETENTION_ACTIVE_DEADLINE_S,
        template=pod,
    )
    return k8s.batch.v1.CronJobSpecArgs(
        schedule=retention.schedule,
        time_zone=RETENTION_TIME_ZONE,
        concurrency_policy="Forbid",
        starting_deadline_seconds=RETENTION_STARTING_DEADLINE_S,
        successful_jobs_history_limit=RETENTION_SUCCESSFUL_HISTORY,
        failed_jobs_history_limit=RETENTION_FAILED_HISTORY,
        job_template=k8s.batch.v1.JobTemplateSpecArgs(metadata=pod.metadata, spec=job),
    )


def database_ingress(
    clients: list[dict[str, str]], instances: dict[str, str], operator_namespace: str
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Only the given client pods reach 5432; the other rules are what CNPG itself needs to run."""
    operator = _net.NetworkPolicyPeerArgs(
        namespace_selector=_selector(match_labels={"kubernetes.io/metadata.name": operator_namespace}),
        pod_selector=_selector(match_labels={"app.kubernetes.io/name": "cloudnative-pg"}),
    )
    return _net.NetworkPolicySpecArgs(
        pod_selector=_selector(match_labels=instances),
        policy_types=["Ingress"],
        ingress=[
            _net.NetworkPolicyIngressRuleArgs(from_=[_pods(c) for c in clients], ports=[_tcp(POSTGRES_PORT)]),
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
