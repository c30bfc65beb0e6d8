"""The HorizontalPodAutoscaler of the service (`hpa.*`): CPU, and requests per second per pod when set."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config import read


@dataclass(frozen=True)
class AutoscalingConfig:
    enabled: bool
    min_replicas: int
    max_replicas: int
    cpu_utilization: int
    rps_per_pod: int
    rps_metric: str


def load(c: pulumi.Config) -> AutoscalingConfig:
    return AutoscalingConfig(
        enabled=read.boolean(c, "hpa.enabled"),
        min_replicas=read.integer(c, "hpa.minReplicas"),
        max_replicas=read.integer(c, "hpa.maxReplicas"),
        cpu_utilization=read.integer(c, "hpa.cpuUtilization"),
        rps_per_pod=read.integer(c, "hpa.rpsPerPod"),
        rps_metric=read.string(c, "hpa.rpsMetric"),
    )


def problems(hpa: AutoscalingConfig) -> list[str]:
    # The replica bounds are checked against service.replicas in infra.config.workload.
    if hpa.rps_per_pod < 0 or not 1 <= hpa.cpu_utilization <= 100:
        return ["hpa.rpsPerPod must be >= 0 and hpa.cpuUtilization within 1..100"]
    return []
