"""GpuNodePool: an autoscaled GKE node pool with NVIDIA GPUs, tainted so only GPU pods land on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.config import GpuNodePoolArgs

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
POOL_LABEL = "modelship.dev/pool"


@dataclass(frozen=True)
class GpuScheduling:
    """What a pod needs to run on the pool: toleration, node selector and a GPU limit."""

    node_selector: dict[str, str]
    gpus_per_pod: int
    tolerations: list[dict[str, str]] = field(default_factory=lambda: [{**GPU_TAINT, "operator": "Equal"}])


class GpuNodePool(pulumi.ComponentResource):
    """A GKE node pool; its `scheduling` is what ModelService adds to the pod spec."""

    scheduling: GpuScheduling

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelship:index:GpuNodePool", name, None, opts)
        labels = {POOL_LABEL: "gpu", "modelship.dev/accelerator": args.accelerator_type}
        self.node_pool = gcp.container.NodePool(
            f"{name}-pool",
            cluster=args.cluster,
            location=args.location,
            initial_node_count=args.min_nodes,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                min_node_count=args.min_nodes, max_node_count=args.max_nodes
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=args.machine_type,
                guest_accelerators=[
                    gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                        type=args.accelerator_type,
                        count=args.accelerator_count,
                        # GKE installs the driver; no NVIDIA DaemonSet to manage ourselves.
                        gpu_driver_installation_config=(
                            gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                                gpu_driver_version="LATEST"
                            )
                        ),
                    )
                ],
                labels=labels,
                taints=[
                    gcp.container.NodePoolNodeConfigTaintArgs(
                        key=GPU_TAINT["key"], value=GPU_TAINT["value"], effect="NO_SCHEDULE"
                    )
                ],
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.scheduling = GpuScheduling(node_selector=labels, gpus_per_pod=args.gpus_per_pod)
        self.register_outputs({"nodePool": self.node_pool.name})
