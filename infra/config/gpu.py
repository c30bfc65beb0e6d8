"""The optional GKE GPU node pool and the CUDA base image (`gpu.*`)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config import read


@dataclass(frozen=True)
class GpuNodePoolArgs:
    """The GKE node pool of infra.components.gpu.GpuNodePool, as read from `gpu.*`."""

    cluster: str
    location: str
    machine_type: str
    accelerator_type: str
    accelerator_count: int
    min_nodes: int
    max_nodes: int
    gpus_per_pod: int


@dataclass(frozen=True)
class GpuConfig:
    enabled: bool
    pool: GpuNodePoolArgs  # what the GpuNodePool component takes, as read from config
    base_image: str


def load(c: pulumi.Config) -> GpuConfig:
    pool = GpuNodePoolArgs(
        cluster=read.string(c, "gpu.cluster"),
        location=read.string(c, "gpu.location"),
        machine_type=read.string(c, "gpu.machineType"),
        accelerator_type=read.string(c, "gpu.acceleratorType"),
        accelerator_count=read.integer(c, "gpu.acceleratorCount"),
        min_nodes=read.integer(c, "gpu.minNodes"),
        max_nodes=read.integer(c, "gpu.maxNodes"),
        gpus_per_pod=read.integer(c, "gpu.perPod"),
    )
    return GpuConfig(enabled=read.boolean(c, "gpu.enabled"), pool=pool, base_image=read.string(c, "gpu.baseImage"))


def problems(gpu: GpuConfig) -> list[str]:
    if not gpu.enabled:
        return []
    found, pool = [], gpu.pool
    if not pool.cluster or not pool.location:
        found.append("gpu.cluster and gpu.location are required when gpu.enabled is true")
    if not 0 <= pool.min_nodes <= pool.max_nodes or pool.max_nodes < 1:
        found.append("need 0 <= gpu.minNodes <= gpu.maxNodes and gpu.maxNodes >= 1")
    if not 1 <= pool.gpus_per_pod <= pool.accelerator_count:
        found.append("gpu.perPod must be between 1 and gpu.acceleratorCount")
    return found
