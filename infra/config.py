"""Stack configuration, read once from Pulumi config into typed dataclasses.

Every key is declared with its type and default in Pulumi.yaml, which is the only place defaults live:
the Pulumi CLI merges them into the stack's config, and `infra.harness` does the same under mocks. So
every read here is a `require_*`; a key that is not declared fails loudly instead of silently falling
back (the `config.get(...) or default` trap that turns 0 and False into defaults).

The keys, their types and their cross-checks live in this one module on purpose: they are read together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

# docs/architecture.md, "Service": the container port and the uvicorn graceful shutdown budget.
CONTAINER_PORT = 8000
SHUTDOWN_GRACE_S = 20

# Keys that hold credentials. Read only with require_secret, set only with `pulumi config set --secret`.
SECRET_KEYS = (
    "image.registryPassword",
    "auth.apiKeys",
    "db.url",
    "db.backup.accessKeyId",
    "db.backup.secretAccessKey",
)

_DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_RETENTION = re.compile(r"^[1-9][0-9]*[dwm]$")
# CNPG's ScheduledBackup schedule: six cron fields, seconds first (robfig/cron), or a macro.
_BACKUP_SCHEDULE = re.compile(r"^(\S+( \S+){5}|@(yearly|annually|monthly|weekly|daily|midnight|hourly))$")
_OBJECT_STORE_PATH = re.compile(r"^(s3|gs|https)://\S+$")  # S3 (and compatibles), GCS, Azure Blob
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
# Five cron fields or a macro. The CronJob controller is the real parser; this catches a wrong field count
# (or a TZ= prefix, which the API rejects next to spec.timeZone) before anything is declared.
_CRON_FIELD = r"[0-9A-Za-z*/,?-]+"
_CRON = re.compile(rf"^({_CRON_FIELD}( {_CRON_FIELD}){{4}}|@(yearly|annually|monthly|weekly|daily|midnight|hourly))$")


class ConfigError(ValueError):
    """A stack configuration that cannot be deployed; the message names the key and the fix."""


@dataclass(frozen=True)
class ImageConfig:
    model_version: str
    artifact_dir: str
    git_revision: str
    repository: str
    digest_ref: str
    platform: str
    registry_server: str
    registry_username: str
    registry_password: pulumi.Output[str]


@dataclass(frozen=True)
class ServiceConfig:
    namespace: str
    create_namespace: bool
    replicas: int
    service_type: str
    service_port: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    log_level: str
    range_policy: str
    max_batch: int
    spool_max_bytes: int
    spool_size_limit: str
    allowed_artifact_sha256: str
    auth_required: bool
    api_keys: pulumi.Output[str]
    pdb_min_available: int


@dataclass(frozen=True)
class AutoscalingConfig:
    enabled: bool
    min_replicas: int
    max_replicas: int
    cpu_utilization: int
    rps_per_pod: int
    rps_metric: str


@dataclass(frozen=True)
class BackupConfig:
    """WAL archiving and scheduled base backups through the Barman Cloud plugin (db.backup.enabled)."""

    destination_path: str
    endpoint_url: str
    retention: str
    schedule: str


@dataclass(frozen=True)
class RestoreConfig:
    """Bootstrap a new Cluster from another Cluster's backups (db.restore.sourcePath, docs/runbook.md)."""

    source_path: str
    server_name: str
    endpoint_url: str
    target_time: str


@dataclass(frozen=True)
class DatabaseConfig:
    mode: str
    install_operator: bool
    operator_namespace: str
    instances: int
    storage_size: str
    storage_class: str
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    postgres_image: str
    name: str
    user: str
    url: pulumi.Output[str]
    backup: BackupConfig | None
    restore: RestoreConfig | None
    install_plugin: bool  # the Barman Cloud plugin's Helm chart, when backup or restore is on
    # object store credentials, shared by the backup and the restore source (db.backup.accessKeyId, ...)
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]


@dataclass(frozen=True)
class RetentionConfig:
    """The prediction-log retention CronJob (`python -m service retention`)."""

    enabled: bool
    days: int
    schedule: str
    batch: int


@dataclass(frozen=True)
class GpuConfig:
    enabled: bool
    cluster: str
    location: str
    machine_type: str
    accelerator_type: str
    accelerator_count: int
    min_nodes: int
    max_nodes: int
    per_pod: int
    base_image: str


@dataclass(frozen=True)
class StackConfig:
    stack: str
    image: ImageConfig
    service: ServiceConfig
    autoscaling: AutoscalingConfig
    database: DatabaseConfig
    retention: RetentionConfig
    gpu: GpuConfig
    protect: bool = False  # Pulumi `protect` on the Namespace and the CNPG Cluster (docs/deploy.md)


def load(config: pulumi.Config, stack: str) -> StackConfig:
    """Read and check the whole stack configuration."""
    _check_secrets(config)
    stack_config = StackConfig(
        stack=stack,
        image=_image(config),
        service=_service(config, stack),
        autoscaling=_autoscaling(config),
        database=_database(config),
        retention=_retention(config),
        gpu=_gpu(config),
        protect=config.require_bool("protect"),
    )
    _check(stack_config)
    return stack_config


def _image(c: pulumi.Config) -> ImageConfig:
    version = c.require("modelVersion")
    artifact_dir = c.require("artifactDir")  # "" documents "derive it from the version"
    return ImageConfig(
        model_version=version,
        artifact_dir=artifact_dir if artifact_dir else f"artifacts/{version}",
        git_revision=c.require("gitRevision"),
        repository=c.require("image.repository"),
        digest_ref=c.require("image.digestRef"),
        platform=c.require("image.platform"),
        registry_server=c.require("image.registryServer"),
        registry_username=c.require("image.registryUsername"),
        registry_password=c.require_secret("image.registryPassword"),
    )


def _service(c: pulumi.Config, stack: str) -> ServiceConfig:
    namespace = c.require("namespace")
    return ServiceConfig(
        namespace=namespace if namespace else f"modelship-{stack}",
        create_namespace=namespace == "",
        replicas=c.require_int("service.replicas"),
        service_type=c.require("service.type"),
        service_port=c.require_int("service.port"),
        cpu_request=c.require("service.cpuRequest"),
        cpu_limit=c.require("service.cpuLimit"),
        memory_request=c.require("service.memoryRequest"),
        memory_limit=c.require("service.memoryLimit"),
        log_level=c.require("service.logLevel"),
        range_policy=c.require("service.rangePolicy"),
        max_batch=c.require_int("service.maxBatch"),
        spool_max_bytes=c.require_int("service.spoolMaxBytes"),
        spool_size_limit=c.require("service.spoolSizeLimit"),
        allowed_artifact_sha256=c.require("service.allowedArtifactSha256"),
        auth_required=c.require_bool("auth.required"),
        api_keys=c.require_secret("auth.apiKeys"),
        pdb_min_available=c.require_int("pdb.minAvailable"),
    )


def _autoscaling(c: pulumi.Config) -> AutoscalingConfig:
    return AutoscalingConfig(
        enabled=c.require_bool("hpa.enabled"),
        min_replicas=c.require_int("hpa.minReplicas"),
        max_replicas=c.require_int("hpa.maxReplicas"),
        cpu_utilization=c.require_int("hpa.cpuUtilization"),
        rps_per_pod=c.require_int("hpa.rpsPerPod"),
        rps_metric=c.require("hpa.rpsMetric"),
    )


def _backup(c: pulumi.Config) -> BackupConfig | None:
    if not c.require_bool("db.backup.enabled"):
        return None
    return BackupConfig(
        destination_path=c.require("db.backup.destinationPath"),
        endpoint_url=c.require("db.backup.endpointUrl"),
        retention=c.require("db.backup.retention"),
        schedule=c.require("db.backup.schedule"),
    )


def _restore(c: pulumi.Config) -> RestoreConfig | None:
    source = c.require("db.restore.sourcePath")
    if not source:
        return None
    return RestoreConfig(
        source_path=source,
        server_name=c.require("db.restore.serverName"),
        endpoint_url=c.require("db.restore.endpointUrl"),
        target_time=c.require("db.restore.targetTime"),
    )


def _database(c: pulumi.Config) -> DatabaseConfig:
    return DatabaseConfig(
        mode=c.require("db.mode"),
        install_operator=c.require_bool("db.installOperator"),
        operator_namespace=c.require("db.operatorNamespace"),
        instances=c.require_int("db.instances"),
        storage_size=c.require("db.storageSize"),
        storage_class=c.require("db.storageClass"),
        cpu_request=c.require("db.cpuRequest"),
        cpu_limit=c.require("db.cpuLimit"),
        memory_request=c.require("db.memoryRequest"),
        memory_limit=c.require("db.memoryLimit"),
        postgres_image=c.require("db.postgresImage"),
        name=c.require("db.name"),
        user=c.require("db.user"),
        url=c.require_secret("db.url"),
        backup=_backup(c),
        restore=_restore(c),
        install_plugin=c.require_bool("db.backup.installPlugin"),
        access_key_id=c.require_secret("db.backup.accessKeyId"),
        secret_access_key=c.require_secret("db.backup.secretAccessKey"),
    )


def _retention(c: pulumi.Config) -> RetentionConfig:
    return RetentionConfig(
        enabled=c.require_bool("retention.enabled"),
        days=c.require_int("retention.days"),
        schedule=c.require("retention.schedule"),
        batch=c.require_int("retention.batch"),
    )


def _gpu(c: pulumi.Config) -> GpuConfig:
    return GpuConfig(
        enabled=c.require_bool("gpu.enabled"),
        cluster=c.require("gpu.cluster"),
        location=c.require("gpu.location"),
        machine_type=c.require("gpu.machineType"),
        accelerator_type=c.require("gpu.acceleratorType"),
        accelerator_count=c.require_int("gpu.acceleratorCount"),
        min_nodes=c.require_int("gpu.minNodes"),
        max_nodes=c.require_int("gpu.maxNodes"),
        per_pod=c.require_int("gpu.perPod"),
        base_image=c.require("gpu.baseImage"),
    )


def _check(s: StackConfig) -> None:
    """Fail before any resource is declared when the combination cannot work."""
    problems = [*_image_problems(s.image), *_service_problems(s), *_database_problems(s.database)]
    problems += [*_retention_problems(s.retention), *_gpu_problems(s.gpu)]
    if problems:
        raise ConfigError("invalid stack configuration:\n  - " + "\n  - ".join(problems))


def _check_secrets(c: pulumi.Config) -> None:
    """Secrets a setting depends on must be set. Only emptiness and shape are looked at, nothing is kept."""

    def raw(key: str) -> str:
        # the runtime's config map, not Config.get, which warns when it is handed a secret
        return str(pulumi.runtime.get_config(c.full_key(key)) or "").strip()

    problems = []
    if c.require_bool("auth.required") and not raw("auth.apiKeys"):
        problems.append("auth.required is true but auth.apiKeys is empty: pulumi config set --secret auth.apiKeys")
    if c.require("db.mode") == "external" and not raw("db.url").startswith(("postgresql://", "postgres://")):
        problems.append("db.mode is external but db.url is not a postgresql:// URL: pulumi config set --secret db.url")
    uses_object_store = c.require_bool("db.backup.enabled") or bool(c.require("db.restore.sourcePath"))
    if uses_object_store and not (raw("db.backup.accessKeyId") and raw("db.backup.secretAccessKey")):
        problems.append(
            "db.backup.enabled or db.restore.sourcePath needs db.backup.accessKeyId and db.backup.secretAccessKey: "
            "pulumi config set --secret db.backup.accessKeyId ... (and db.backup.secretAccessKey)"
        )
    if c.require("image.registryUsername") and not raw("image.registryPassword"):
        problems.append("image.registryUsername is set but image.registryPassword is empty")
    if problems:
        raise ConfigError("invalid stack configuration:\n  - " + "\n  - ".join(problems))


def _image_problems(i: ImageConfig) -> list[str]:
    problems = []
    if not _LABEL_VALUE.match(i.model_version):
        problems.append("modelVersion must be set to an artifact version such as house-price-3f9a0c1b2d4e")
    if i.digest_ref and not _DIGEST_REF.match(i.digest_ref):
        problems.append(f"image.digestRef must look like repo@sha256:<64 hex>, got {i.digest_ref!r}")
    if not i.digest_ref and not i.repository:
        problems.append("image.repository is required to build an image (or set image.digestRef)")
    if i.repository and (":" in i.repository.rsplit("/", 1)[-1] or "@" in i.repository):
        problems.append("image.repository takes no tag or digest; the tag is modelVersion")
    return problems


def _service_problems(s: StackConfig) -> list[str]:
    svc, hpa = s.service, s.autoscaling
    problems = []
    if svc.service_type not in ("ClusterIP", "LoadBalancer"):
        problems.append("service.type must be ClusterIP or LoadBalancer")
    if svc.range_policy not in ("reject", "flag"):
        problems.append("service.rangePolicy must be reject or flag")
    if svc.replicas < 1:
        problems.append("service.replicas must be at least 1")
    if hpa.enabled and not 1 <= hpa.min_replicas <= svc.replicas <= hpa.max_replicas:
        problems.append("need 1 <= hpa.minReplicas <= service.replicas <= hpa.maxReplicas")
    floor = hpa.min_replicas if hpa.enabled else svc.replicas
    if svc.pdb_min_available and svc.pdb_min_available >= floor:
        problems.append("pdb.minAvailable must be below the minimum replica count, or no node could drain")
    if hpa.rps_per_pod < 0 or not 1 <= hpa.cpu_utilization <= 100:
        problems.append("hpa.rpsPerPod must be >= 0 and hpa.cpuUtilization within 1..100")
    return problems


def _database_problems(d: DatabaseConfig) -> list[str]:
    problems = []
    if d.mode not in ("cloudnative-pg", "external"):
        problems.append("db.mode must be cloudnative-pg or external")
    if d.mode == "cloudnative-pg" and d.instances < 1:
        problems.append("db.instances must be at least 1")
    if d.backup and not _RETENTION.match(d.backup.retention):
        problems.append("db.backup.retention must look like 30d, 4w or 6m")
    return problems + _backup_problems(d) + _restore_problems(d)


def _backup_problems(d: DatabaseConfig) -> list[str]:
    b = d.backup
    if b is None:
        return []
    if d.mode == "external":
        return ["db.backup.enabled needs db.mode cloudnative-pg (back up a managed database with its provider)"]
    problems = []
    if not _OBJECT_STORE_PATH.match(b.destination_path):
        problems.append(
            "db.backup.enabled is true but db.backup.destinationPath is not an object store path: "
            f"pulumi config set db.backup.destinationPath s3://<bucket>/<stack> (got {b.destination_path!r})"
        )
    if not _BACKUP_SCHEDULE.match(b.schedule):
        problems.append(f"db.backup.schedule takes six cron fields, seconds first ('0 0 3 * * *'), got {b.schedule!r}")
    return problems


def _restore_problems(d: DatabaseConfig) -> list[str]:
    r = d.restore
    if r is None:
        return []
    if d.mode == "external":
        return ["db.restore.sourcePath needs db.mode cloudnative-pg: a restore bootstraps a new CNPG Cluster"]
    problems = []
    if not _OBJECT_STORE_PATH.match(r.source_path):
        problems.append(
            f"db.restore.sourcePath must be an object store path such as s3://<bucket>/prod, got {r.source_path!r}"
        )
    if d.backup and d.backup.destination_path.rstrip("/") == r.source_path.rstrip("/"):
        problems.append(
            "db.backup.destinationPath equals db.restore.sourcePath: the new Cluster would archive into the backups "
            "it restores from; give the new stack its own path"
        )
    if not _LABEL_VALUE.match(r.server_name):
        problems.append("db.restore.serverName must name the source Cluster (modelship's is modelship-db)")
    if r.target_time and not _RFC3339.match(r.target_time):
        problems.append(f"db.restore.targetTime must be RFC 3339 such as 2026-11-29T08:00:00Z, got {r.target_time!r}")
    return problems


def _retention_problems(r: RetentionConfig) -> list[str]:
    if not r.enabled:
        return []
    problems = []
    if r.days < 1:
        problems.append("retention.days must be at least 1 (0 would delete the whole prediction log)")
    if r.batch < 1:
        problems.append("retention.batch must be at least 1")
    if not _CRON.match(r.schedule):
        problems.append(f"retention.schedule must be five cron fields such as '17 3 * * *', got {r.schedule!r}")
    return problems


def _gpu_problems(g: GpuConfig) -> list[str]:
    if not g.enabled:
        return []
    problems = []
    if not g.cluster or not g.location:
        problems.append("gpu.cluster and gpu.location are required when gpu.enabled is true")
    if not 0 <= g.min_nodes <= g.max_nodes or g.max_nodes < 1:
        problems.append("need 0 <= gpu.minNodes <= gpu.maxNodes and gpu.maxNodes >= 1")
    if not 1 <= g.per_pod <= g.accelerator_count:
        problems.append("gpu.perPod must be between 1 and gpu.acceleratorCount")
    return problems
