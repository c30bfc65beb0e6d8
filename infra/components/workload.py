"""The pod templates of the service (probes, resources, graceful shutdown) and of its retention job,
both Pod Security "restricted" with a read-only root.

Plain functions over typed args, so ModelService stays a wiring of resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gpu import GPU_RESOURCE, GpuScheduling
from infra.config import CONTAINER_PORT, SHUTDOWN_GRACE_S, ServiceConfig
from infra.config.settings_bridge import env_var

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
# The challenger's artifact (docs/shadow.md): its image's initContainer copies /app/model into this emptyDir.
SHADOW_DIR = "/var/lib/modelship/shadow"
SHADOW_MODEL_DIR = f"{SHADOW_DIR}/model"
API_KEYS_FILE = f"{API_KEYS_DIR}/keys"
DATABASE_URL_KEY = env_var("database_url")  # the settings Secret's key, read by the service and the retention job
# checkov (make scan) skip, on the Deployment and the CronJob that read DATABASE_URL from the environment.
CHECKOV_SECRET_ENV_SKIP = {
    "checkov.io/skip1": "CKV_K8S_35=DATABASE_URL is read from the environment by the service settings and the "
    "retention job (one key of a Pulumi-managed Secret); the API keys, the other secret, are mounted as a file"
}
# The retention job is one interpreter and one connection: importing the CLI (sklearn included, via
# model.artifact) peaked at about 125 MiB RSS when measured in the dev virtualenv, and a batch of ids adds
# little. The memory limit leaves about 4x of that.
JOB_REQUESTS = {"cpu": "100m", "memory": "256Mi"}
JOB_LIMITS = {"cpu": "500m", "memory": "512Mi"}


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
    shadow_image: str | None = None  # the challenger's image by digest, when a shadow runs


def deployment_spec(pod: PodArgs, replicas: int) -> k8s.apps.v1.DeploymentSpecArgs:
    """A rolling update that never drops below REPLICAS ready pods; POD's selector labels select them."""
    return k8s.apps.v1.DeploymentSpecArgs(
        replicas=replicas,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod.selector_labels),
        strategy=k8s.apps.v1.DeploymentStrategyArgs(
            type="RollingUpdate",
            rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
        ),
        min_ready_seconds=5,
        revision_history_limit=5,
        progress_deadline_seconds=600,
        template=pod_template(pod),
    )


def pod_template(args: PodArgs) -> k8s.core.v1.PodTemplateSpecArgs:
    gpu = args.gpu
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=args.labels, annotations=_annotations(args.config_hash)),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=args.service_account,
            automount_service_account_token=False,
            enable_service_links=False,
            termination_grace_period_seconds=TERMINATION_GRACE_S,
            security_context=_pod_security(),
            containers=[_container(args)],
            init_containers=[_shadow_copy(args.shadow_image)] if args.shadow_image else None,
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
        security_context=_container_security(),
        volume_mounts=_mounts(args),
    )


def _pod_security() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        fs_group=RUN_AS_USER,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def _container_security() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def _probe(path: str, period: int, timeout: int, failures: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=CONTAINER_PORT),
        period_seconds=period,
        timeout_seconds=timeout,
        failure_threshold=failures,
    )


def _resources(config: ServiceConfig, gpu: GpuScheduling | None) -> k8s.core.v1.ResourceRequirementsArgs:
    limits = {"cpu": config.cpu_limit, "memory": config.memory_limit}
    if gpu is not None:
        limits[GPU_RESOURCE] = str(gpu.gpus_per_pod)  # extended resources go in limits only
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": config.cpu_request, "memory": config.memory_request}, limits=limits
    )


def _tmp_volume() -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi"))


def _tmp_mount() -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")  # noqa: S108 - the pod's own emptyDir


def _volumes(args: PodArgs) -> list[k8s.core.v1.VolumeArgs]:
    volumes = [
        _tmp_volume(),
        k8s.core.v1.VolumeArgs(
            name="spool",
            empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=args.settings.spool_size_limit),
        ),
    ]
    if args.shadow_image:
        volumes.append(k8s.core.v1.VolumeArgs(name="shadow-model", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()))
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
        _tmp_mount(),
        k8s.core.v1.VolumeMountArgs(name="spool", mount_path=SPOOL_DIR),
    ]
    if args.api_keys_secret:
        mounts.append(k8s.core.v1.VolumeMountArgs(name="api-keys", mount_path=API_KEYS_DIR, read_only=True))
    if args.shadow_image:
        mounts.append(k8s.core.v1.VolumeMountArgs(name="shadow-model", mount_path=SHADOW_DIR, read_only=True))
    return mounts


def _shadow_copy(image: str) -> k8s.core.v1.ContainerArgs:
    """The challenger's image, run once before the service: it copies its baked artifact into the shared emptyDir."""
    copy = f"import shutil; shutil.copytree('/app/model', '{SHADOW_MODEL_DIR}')"
    return k8s.core.v1.ContainerArgs(
        name="shadow-model",
        image=image,
        image_pull_policy="IfNotPresent",
        command=["python", "-c", copy],
        resources=k8s.core.v1.ResourceRequirementsArgs(requests=JOB_REQUESTS, limits=JOB_LIMITS),
        security_context=_container_security(),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="shadow-model", mount_path=SHADOW_DIR)],
    )


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


# --- the retention job ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPodArgs:
    image_ref: pulumi.Input[str]
    labels: dict[str, str]
    service_account: str
    database_url_secret: str  # the Secret whose DATABASE_URL_KEY the Deployment reads too
    command: list[str]


def job_pod_template(args: JobPodArgs) -> k8s.core.v1.PodTemplateSpecArgs:
    """A run-to-completion pod: no probes, no ports, no spool; never on the GPU pool (no toleration)."""
    database_url = k8s.core.v1.EnvVarSourceArgs(
        secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=args.database_url_secret, key=DATABASE_URL_KEY)
    )
    container = k8s.core.v1.ContainerArgs(
        name="retention",
        image=args.image_ref,
        image_pull_policy="IfNotPresent",
        command=args.command,
        env=[k8s.core.v1.EnvVarArgs(name=DATABASE_URL_KEY, value_from=database_url)],
        resources=k8s.core.v1.ResourceRequirementsArgs(requests=JOB_REQUESTS, limits=JOB_LIMITS),
        security_context=_container_security(),
        volume_mounts=[_tmp_mount()],
    )
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=args.labels),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=args.service_account,
            automount_service_account_token=False,
            enable_service_links=False,
            # Never: a failed attempt's pod (and its log) stays for `kubectl logs`; backoffLimit bounds retries.
            restart_policy="Never",
            security_context=_pod_security(),
            containers=[container],
            volumes=[_tmp_volume()],
        ),
    )
