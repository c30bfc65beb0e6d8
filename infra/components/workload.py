"""The pod template of the service: probes, resources, Pod Security "restricted" and graceful shutdown.

Plain functions over typed args, so ModelService stays a wiring of resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gpu import GPU_RESOURCE, GpuScheduling
from infra.config import CONTAINER_PORT, SHUTDOWN_GRACE_S, ServiceConfig

# docs/architecture.md, "Service": liveness, readiness and metrics routes of the service.
HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"

RUN_AS_USER = 10001  # the Dockerfile's user
PRESTOP_SLEEP_S = 5  # lets endpoints and load balancers drop the pod before uvicorn stops accepting
# uvicorn gets SIGTERM after the preStop sleep and needs up to SHUTDOWN_GRACE_S to drain; 5 s slack on top.
TERMINATION_GRACE_S = PRESTOP_SLEEP_S + SHUTDOWN_GRACE_S + 5
SPOOL_DIR = "/var/spool/modelship"
API_KEYS_DIR = "/etc/modelship/api-keys"
API_KEYS_FILE = f"{API_KEYS_DIR}/keys"


@dataclass(frozen=True)
class PodArgs:
    image_ref: pulumi.Input[str]
    selector_labels: dict[str, str]
    labels: dict[str, str]
    service_account: str
    settings_config_map: str
    settings_secret: str
    api_keys_secret: str | None
    config_hash: str
    settings: ServiceConfig
    gpu: GpuScheduling | None


def pod_template(args: PodArgs) -> k8s.core.v1.PodTemplateSpecArgs:
    gpu = args.gpu
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=args.labels, annotations=_annotations(args.config_hash)),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=args.service_account,
            automount_service_account_token=False,
            enable_service_links=False,
            termination_grace_period_seconds=TERMINATION_GRACE_S,
            security_context=k8s.core.v1.PodSecurityContextArgs(
                run_as_non_root=True,
                run_as_user=RUN_AS_USER,
                run_as_group=RUN_AS_USER,
                fs_group=RUN_AS_USER,
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            containers=[_container(args)],
            volumes=_volumes(args),
            topology_spread_constraints=_spread(args.selector_labels),
            node_selector=gpu.node_selector if gpu else None,
            tolerations=_tolerations(gpu),
        ),
    )


def _tolerations(gpu: GpuScheduling | None) -> list[k8s.core.v1.TolerationArgs] | None:
    if gpu is None:
        return None
    return [
        k8s.core.v1.TolerationArgs(key=t["key"], operator=t["operator"], value=t["value"], effect=t["effect"])
        for t in gpu.tolerations
    ]


def _annotations(config_hash: str) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(CONTAINER_PORT),
        "prometheus.io/path": METRICS_PATH,
        # A settings change rolls the pods, which read their environment only at start.
        "modelship.dev/settings-hash": config_hash,
    }


def _container(args: PodArgs) -> k8s.core.v1.ContainerArgs:
    env_from = [
        k8s.core.v1.EnvFromSourceArgs(config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=args.settings_config_map)),
        k8s.core.v1.EnvFromSourceArgs(secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=args.settings_secret)),
    ]
    return k8s.core.v1.ContainerArgs(
        name="modelship",
        image=args.image_ref,
        image_pull_policy="IfNotPresent",
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=CONTAINER_PORT, protocol="TCP")],
        env_from=env_from,
        resources=_resources(args.settings, args.gpu),
        startup_probe=_probe(HEALTH_PATH, period=2, timeout=2, failures=60),  # up to 2 min to load the model
        readiness_probe=_probe(READY_PATH, period=5, timeout=2, failures=3),
        liveness_probe=_probe(HEALTH_PATH, period=10, timeout=3, failures=3),
        lifecycle=k8s.core.v1.LifecycleArgs(
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=["sleep", str(PRESTOP_SLEEP_S)])
            )
        ),
        security_context=k8s.core.v1.SecurityContextArgs(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=RUN_AS_USER,
            run_as_group=RUN_AS_USER,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        ),
        volume_mounts=_mounts(args),
    )


def _probe(path: str, period: int, timeout: int, failures: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=CONTAINER_PORT),
        period_seconds=period,
        timeout_seconds=timeout,
        failure_threshold=failures,
    )


def _resources(s: ServiceConfig, gpu: GpuScheduling | None) -> k8s.core.v1.ResourceRequirementsArgs:
    limits = {"cpu": s.cpu_limit, "memory": s.memory_limit}
    if gpu is not None:
        limits[GPU_RESOURCE] = str(gpu.gpus_per_pod)  # extended resources go in limits only
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": s.cpu_request, "memory": s.memory_request}, limits=limits
    )


def _volumes(args: PodArgs) -> list[k8s.core.v1.VolumeArgs]:
    volumes = [
        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")),
        k8s.core.v1.VolumeArgs(
            name="spool",
            empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=args.settings.spool_size_limit),
        ),
    ]
    if args.api_keys_secret:
        volumes.append(
            k8s.core.v1.VolumeArgs(
                name="api-keys",
                secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=args.api_keys_secret, default_mode=0o440),
            )
        )
    return volumes


def _mounts(args: PodArgs) -> list[k8s.core.v1.VolumeMountArgs]:
    mounts = [
        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108 - the pod's own emptyDir
        k8s.core.v1.VolumeMountArgs(name="spool", mount_path=SPOOL_DIR),
    ]
    if args.api_keys_secret:
        mounts.append(k8s.core.v1.VolumeMountArgs(name="api-keys", mount_path=API_KEYS_DIR, read_only=True))
    return mounts


def _spread(selector_labels: dict[str, str]) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    # ScheduleAnyway: a one-node dev cluster still schedules; bigger clusters still spread.
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels),
        )
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]
