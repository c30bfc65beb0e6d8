"""Stack configuration, read once from Pulumi config into typed dataclasses.

Every key is declared with its type and default in Pulumi.yaml, which is the only place defaults live:
the Pulumi CLI merges them into the stack's config, and `infra.harness` does the same under mocks. So
every read here requires its key; a key that is not declared fails loudly instead of silently falling
back (the `config.get(...) or default` trap that turns 0 and False into defaults).

Dotted keys (`service.replicas`) reach the program in two forms, and `_raw` reads both. The engine looks a
declared key up as a path (pulumi/pulumi pkg/workspace/config.go mergeConfig, config.Map.Get(key, true)), so
it writes an unset key's default into an object, `modelship:service: {"replicas": "1", ...}`, while a value
set flat (a stack file's `modelship:service.replicas: 3`, `pulumi config set service.replicas 3`) stays
under its flat name. Pulumi's `Config.require` reads only the flat name, so on the real engine every dotted
key without a flat stack value would be "missing". The flat value wins when both exist.

The keys, their types and their cross-checks live in this one module on purpose: they are read together.
The exception is the service settings a stack may set ("one contract, one place"): each field of
service/settings.py marked STACK is read here as `service.<camelCaseName>`, checked by the service's own
Settings model and rendered into the ConfigMap, so its type, default and checks stay in that one declaration
and Pulumi.yaml does not repeat them (the engine accepts an undeclared key, ENGINES.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from infra import contract
from service.run import PORT
from service.run import SHUTDOWN_GRACE_S as SHUTDOWN_GRACE_S  # re-exported for the components
from service.settings import Settings

# docs/architecture.md, "Service": the container port and the uvicorn graceful shutdown budget, owned by the
# service's run command (service/run.py), which the image's CMD is tested against.
CONTAINER_PORT = PORT

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


class StackConfigError(ValueError):
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
    spool_max_bytes: int
    spool_size_limit: str
    # MODELSHIP_<FIELD> -> text of every STACK setting of service/settings.py: the stack's value, else the default
    settings_env: dict[str, str]
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
    """The prediction-log retention CronJob (`python -m service.retention`)."""

    enabled: bool
    days: int
    schedule: str
    batch: int


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


@dataclass(frozen=True)
class MonitoringConfig:
    """Prometheus Operator objects (PodMonitor, PrometheusRule) and the Grafana dashboard ConfigMap."""

    enabled: bool
    scraper_namespace: str
    scrape_interval: str
    selector_labels: dict[str, str]
    dashboard_label: str
    runbook_url: str
    availability_slo: float
    latency_slo: float
    latency_threshold_s: float
    oldest_unflushed_s: int
    backlog_for: str
    spool_percent: int
    rollout_window: str


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
    monitoring: MonitoringConfig | None = None  # None only for StackConfig built by hand in tests


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
        protect=_protect(config),
        monitoring=_monitoring(config),
    )
    _check(stack_config)
    return stack_config


def _image(c: pulumi.Config) -> ImageConfig:
    version = _str(c, contract.MODEL_VERSION)
    artifact_dir = _str(c, contract.ARTIFACT_DIR)  # "" documents "derive it from the version"
    return ImageConfig(
        model_version=version,
        artifact_dir=artifact_dir if artifact_dir else f"artifacts/{version}",
        git_revision=_str(c, "gitRevision"),
        repository=_str(c, "image.repository"),
        digest_ref=_str(c, contract.IMAGE_DIGEST_REF),
        platform=_str(c, "image.platform"),
        registry_server=_str(c, "image.registryServer"),
        registry_username=_str(c, "image.registryUsername"),
        registry_password=_secret(c, "image.registryPassword"),
    )


def _service(c: pulumi.Config, stack: str) -> ServiceConfig:
    namespace = _str(c, "namespace")
    settings, texts = _service_settings(c)
    return ServiceConfig(
        namespace=namespace if namespace else f"modelship-{stack}",
        create_namespace=namespace == "",
        replicas=_int(c, "service.replicas"),
        service_type=_str(c, "service.type"),
        service_port=_int(c, "service.port"),
        cpu_request=_str(c, "service.cpuRequest"),
        cpu_limit=_str(c, "service.cpuLimit"),
        memory_request=_str(c, "service.memoryRequest"),
        memory_limit=_str(c, "service.memoryLimit"),
        spool_max_bytes=settings.spool_max_bytes,
        spool_size_limit=_str(c, "service.spoolSizeLimit"),
        settings_env={_env_var(name): text for name, text in texts.items()},
        auth_required=_bool(c, contract.AUTH_REQUIRED),
        api_keys=_secret(c, contract.API_KEYS),
        pdb_min_available=_int(c, "pdb.minAvailable"),
    )


class _StackSettings(Settings):
    """The service's Settings fed only what it is given: the deploying machine's environment must not leak in."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: type[Settings], init_settings: Any, env_settings: Any, dotenv_settings: Any,
        file_secret_settings: Any,
    ) -> tuple[Any, ...]:  # fmt: skip
        return (init_settings,)


def stack_settings() -> dict[str, str]:
    """{field name: config key} of the Settings fields marked STACK, e.g. max_batch -> service.maxBatch."""
    return {name: _stack_key(name) for name, field in Settings.model_fields.items() if _is_stack(field)}


def _is_stack(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("stack") is True


def _stack_key(name: str) -> str:
    first, *rest = name.split("_")
    return "service." + first + "".join(part.capitalize() for part in rest)


def _env_var(name: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def _service_settings(c: pulumi.Config) -> tuple[Settings, dict[str, str]]:
    """The stack's STACK settings checked by the service's own model, and the text of each (default if unset)."""
    keys = stack_settings()
    given = {name: value for name, key in keys.items() if (value := _raw(c, key)) is not None}
    try:
        settings = _StackSettings.model_validate(given)
    except ValidationError as error:
        problems = [f"{keys[str(e['loc'][0])]}: {e['msg']}, got {e['input']!r}" for e in error.errors()]
        raise StackConfigError("invalid stack configuration:\n  - " + "\n  - ".join(problems)) from None
    defaults = {name: _text(getattr(settings, name)) for name in keys if name not in given}
    return settings, {name: text for name, text in {**given, **defaults}.items() if text is not None}


def _text(value: object) -> str | None:
    """A default as the environment variable pydantic-settings reads back (true, 1000, reject); None: unset."""
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def _autoscaling(c: pulumi.Config) -> AutoscalingConfig:
    return AutoscalingConfig(
        enabled=_bool(c, "hpa.enabled"),
        min_replicas=_int(c, "hpa.minReplicas"),
        max_replicas=_int(c, "hpa.maxReplicas"),
        cpu_utilization=_int(c, "hpa.cpuUtilization"),
        rps_per_pod=_int(c, "hpa.rpsPerPod"),
        rps_metric=_str(c, "hpa.rpsMetric"),
    )


def _protect(c: pulumi.Config) -> bool:
    return _bool(c, "protect")


def _backup(c: pulumi.Config) -> BackupConfig | None:
    if not _bool(c, "db.backup.enabled"):
        return None
    return BackupConfig(
        destination_path=_str(c, "db.backup.destinationPath"),
        endpoint_url=_str(c, "db.backup.endpointUrl"),
        retention=_str(c, "db.backup.retention"),
        schedule=_str(c, "db.backup.schedule"),
    )


def _restore(c: pulumi.Config) -> RestoreConfig | None:
    source = _str(c, "db.restore.sourcePath")
    if not source:
        return None
    return RestoreConfig(
        source_path=source,
        server_name=_str(c, "db.restore.serverName"),
        endpoint_url=_str(c, "db.restore.endpointUrl"),
        target_time=_str(c, "db.restore.targetTime"),
    )


def _database(c: pulumi.Config) -> DatabaseConfig:
    return DatabaseConfig(
        mode=_str(c, "db.mode"),
        install_operator=_bool(c, "db.installOperator"),
        operator_namespace=_str(c, "db.operatorNamespace"),
        instances=_int(c, "db.instances"),
        storage_size=_str(c, "db.storageSize"),
        storage_class=_str(c, "db.storageClass"),
        cpu_request=_str(c, "db.cpuRequest"),
        cpu_limit=_str(c, "db.cpuLimit"),
        memory_request=_str(c, "db.memoryRequest"),
        memory_limit=_str(c, "db.memoryLimit"),
        postgres_image=_str(c, "db.postgresImage"),
        name=_str(c, "db.name"),
        user=_str(c, "db.user"),
        url=_secret(c, "db.url"),
        backup=_backup(c),
        restore=_restore(c),
        install_plugin=_bool(c, "db.backup.installPlugin"),
        access_key_id=_secret(c, "db.backup.accessKeyId"),
        secret_access_key=_secret(c, "db.backup.secretAccessKey"),
    )


def _retention(c: pulumi.Config) -> RetentionConfig:
    return RetentionConfig(
        enabled=_bool(c, "retention.enabled"),
        days=_int(c, "retention.days"),
        schedule=_str(c, "retention.schedule"),
        batch=_int(c, "retention.batch"),
    )


def _gpu(c: pulumi.Config) -> GpuConfig:
    pool = GpuNodePoolArgs(
        cluster=_str(c, "gpu.cluster"),
        location=_str(c, "gpu.location"),
        machine_type=_str(c, "gpu.machineType"),
        accelerator_type=_str(c, "gpu.acceleratorType"),
        accelerator_count=_int(c, "gpu.acceleratorCount"),
        min_nodes=_int(c, "gpu.minNodes"),
        max_nodes=_int(c, "gpu.maxNodes"),
        gpus_per_pod=_int(c, "gpu.perPod"),
    )
    return GpuConfig(enabled=_bool(c, "gpu.enabled"), pool=pool, base_image=_str(c, "gpu.baseImage"))


def _raw(c: pulumi.Config, key: str) -> str | None:
    """The flat value of KEY, else the value at its path inside the object the engine wrote defaults into."""
    flat = pulumi.runtime.get_config(c.full_key(key))
    if flat is not None:
        return str(flat)
    root, _, rest = key.partition(".")
    stored = pulumi.runtime.get_config(c.full_key(root)) if rest else None
    if stored is None:
        return None
    try:
        node: Any = json.loads(str(stored))
    except ValueError:
        return None
    for part in rest.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return "true" if node else "false"
    return None if isinstance(node, dict | list) or node is None else str(node)


def _str(c: pulumi.Config, key: str) -> str:
    value = _raw(c, key)
    if value is None:
        message = f"missing required configuration {c.full_key(key)}: declare it in Pulumi.yaml with a default"
        raise StackConfigError(message)
    return value


def _int(c: pulumi.Config, key: str) -> int:
    value = _str(c, key)
    try:
        return int(value)
    except ValueError:
        raise StackConfigError(f"{key} must be an integer, got {value!r}") from None


def _bool(c: pulumi.Config, key: str) -> bool:
    value = _str(c, key)
    if value not in ("true", "True", "false", "False"):
        raise StackConfigError(f"{key} must be true or false, got {value!r}")
    return value in ("true", "True")


def _secret(c: pulumi.Config, key: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(_str(c, key))


def _check(stack: StackConfig) -> None:
    """Fail before any resource is declared when the combination cannot work."""
    problems = [*_image_problems(stack.image), *_service_problems(stack), *_database_problems(stack.database)]
    problems += [*_retention_problems(stack.retention), *_gpu_problems(stack.gpu)]
    problems += _monitoring_problems(stack.monitoring) if stack.monitoring else []
    if problems:
        raise StackConfigError("invalid stack configuration:\n  - " + "\n  - ".join(problems))


def _check_secrets(c: pulumi.Config) -> None:
    """Secrets a setting depends on must be set. Only emptiness and shape are looked at, nothing is kept."""

    def raw(key: str) -> str:
        # the runtime's config map, not Config.get, which warns when it is handed a secret
        return (_raw(c, key) or "").strip()

    problems = []
    if _bool(c, "auth.required") and not raw("auth.apiKeys"):
        problems.append("auth.required is true but auth.apiKeys is empty: pulumi config set --secret auth.apiKeys")
    if _str(c, "db.mode") == "external" and not raw("db.url").startswith(("postgresql://", "postgres://")):
        problems.append("db.mode is external but db.url is not a postgresql:// URL: pulumi config set --secret db.url")
    uses_object_store = _bool(c, "db.backup.enabled") or bool(_str(c, "db.restore.sourcePath"))
    if uses_object_store and not (raw("db.backup.accessKeyId") and raw("db.backup.secretAccessKey")):
        problems.append(
            "db.backup.enabled or db.restore.sourcePath needs db.backup.accessKeyId and db.backup.secretAccessKey: "
            "pulumi config set --secret db.backup.accessKeyId ... (and db.backup.secretAccessKey)"
        )
    if _str(c, "image.registryUsername") and not raw("image.registryPassword"):
        problems.append("image.registryUsername is set but image.registryPassword is empty")
    if problems and pulumi.runtime.is_dry_run():
        # A preview in a pull request holds no environment secrets by design (docs/deploy.md): the deploy job
        # stores them right before `up`, which still refuses without them.
        for problem in problems:
            pulumi.log.warn(f"preview without a secret `up` needs: {problem}")
        return
    if problems:
        raise StackConfigError("invalid stack configuration:\n  - " + "\n  - ".join(problems))


def _image_problems(image: ImageConfig) -> list[str]:
    problems = []
    if not _LABEL_VALUE.match(image.model_version):
        problems.append("modelVersion must be set to an artifact version such as house-price-3f9a0c1b2d4e")
    if image.digest_ref and not _DIGEST_REF.match(image.digest_ref):
        problems.append(f"image.digestRef must look like repo@sha256:<64 hex>, got {image.digest_ref!r}")
    if not image.digest_ref and not image.repository:
        problems.append("image.repository is required to build an image (or set image.digestRef)")
    if image.repository and (":" in image.repository.rsplit("/", 1)[-1] or "@" in image.repository):
        problems.append("image.repository takes no tag or digest; the tag is modelVersion")
    return problems


def _service_problems(stack: StackConfig) -> list[str]:
    svc, hpa = stack.service, stack.autoscaling
    problems = []
    if svc.service_type not in ("ClusterIP", "LoadBalancer"):
        problems.append("service.type must be ClusterIP or LoadBalancer")
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


def _database_problems(database: DatabaseConfig) -> list[str]:
    problems = []
    if database.mode not in ("cloudnative-pg", "external"):
        problems.append("db.mode must be cloudnative-pg or external")
    if database.mode == "cloudnative-pg" and database.instances < 1:
        problems.append("db.instances must be at least 1")
    if database.backup and not _RETENTION.match(database.backup.retention):
        problems.append("db.backup.retention must look like 30d, 4w or 6m")
    return problems + _backup_problems(database) + _restore_problems(database)


def _backup_problems(database: DatabaseConfig) -> list[str]:
    backup = database.backup
    if backup is None:
        return []
    if database.mode == "external":
        return ["db.backup.enabled needs db.mode cloudnative-pg (back up a managed database with its provider)"]
    problems = []
    if not _OBJECT_STORE_PATH.match(backup.destination_path):
        problems.append(
            "db.backup.enabled is true but db.backup.destinationPath is not an object store path: "
            f"pulumi config set db.backup.destinationPath s3://<bucket>/<stack> (got {backup.destination_path!r})"
        )
    if not _BACKUP_SCHEDULE.match(backup.schedule):
        problems.append(
            f"db.backup.schedule takes six cron fields, seconds first ('0 0 3 * * *'), got {backup.schedule!r}"
        )
    return problems


def _restore_problems(database: DatabaseConfig) -> list[str]:
    restore = database.restore
    if restore is None:
        return []
    if database.mode == "external":
        return ["db.restore.sourcePath needs db.mode cloudnative-pg: a restore bootstraps a new CNPG Cluster"]
    problems = []
    if not _OBJECT_STORE_PATH.match(restore.source_path):
        problems.append(
            "db.restore.sourcePath must be an object store path such as s3://<bucket>/prod, "
            f"got {restore.source_path!r}"
        )
    if database.backup and database.backup.destination_path.rstrip("/") == restore.source_path.rstrip("/"):
        problems.append(
            "db.backup.destinationPath equals db.restore.sourcePath: the new Cluster would archive into the backups "
            "it restores from; give the new stack its own path"
        )
    if not _LABEL_VALUE.match(restore.server_name):
        problems.append("db.restore.serverName must name the source Cluster (modelship's is modelship-db)")
    if restore.target_time and not _RFC3339.match(restore.target_time):
        problems.append(
            f"db.restore.targetTime must be RFC 3339 such as 2026-11-29T08:00:00Z, got {restore.target_time!r}"
        )
    return problems


def _retention_problems(retention: RetentionConfig) -> list[str]:
    if not retention.enabled:
        return []
    problems = []
    if retention.days < 1:
        problems.append("retention.days must be at least 1 (0 would delete the whole prediction log)")
    if retention.batch < 1:
        problems.append("retention.batch must be at least 1")
    if not _CRON.match(retention.schedule):
        problems.append(f"retention.schedule must be five cron fields such as '17 3 * * *', got {retention.schedule!r}")
    return problems


def _gpu_problems(gpu: GpuConfig) -> list[str]:
    if not gpu.enabled:
        return []
    problems, pool = [], gpu.pool
    if not pool.cluster or not pool.location:
        problems.append("gpu.cluster and gpu.location are required when gpu.enabled is true")
    if not 0 <= pool.min_nodes <= pool.max_nodes or pool.max_nodes < 1:
        problems.append("need 0 <= gpu.minNodes <= gpu.maxNodes and gpu.maxNodes >= 1")
    if not 1 <= pool.gpus_per_pod <= pool.accelerator_count:
        problems.append("gpu.perPod must be between 1 and gpu.acceleratorCount")
    return problems


# --- monitoring ----------------------------------------------------------------------------------

_DURATION = re.compile(r"^[1-9][0-9]*(s|m|h)$")
_LABEL_PAIR = re.compile(r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$")


def _number(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise StackConfigError(f"{key} must be a number such as 99.9, got {value!r}") from None


def _labels(key: str, value: str) -> dict[str, str]:
    pairs = [p.strip() for p in value.split(",") if p.strip()]
    if not all(_LABEL_PAIR.match(p) for p in pairs):
        raise StackConfigError(f"{key} must be comma-separated key=value label pairs, got {value!r}")
    return dict(p.split("=", 1) for p in pairs)


def _monitoring(c: pulumi.Config) -> MonitoringConfig:
    return MonitoringConfig(
        enabled=_bool(c, "monitoring.enabled"),
        scraper_namespace=_str(c, "monitoring.scraperNamespace"),
        scrape_interval=_str(c, "monitoring.scrapeInterval"),
        selector_labels=_labels("monitoring.selectorLabels", _str(c, "monitoring.selectorLabels")),
        dashboard_label=_str(c, "monitoring.dashboardLabel"),
        runbook_url=_str(c, "monitoring.runbookUrl"),
        availability_slo=_number("monitoring.availabilitySlo", _str(c, "monitoring.availabilitySlo")),
        latency_slo=_number("monitoring.latencySlo", _str(c, "monitoring.latencySlo")),
        latency_threshold_s=_number(
            "monitoring.latencyThresholdSeconds", _str(c, "monitoring.latencyThresholdSeconds")
        ),
        oldest_unflushed_s=_int(c, "monitoring.oldestUnflushedSeconds"),
        backlog_for=_str(c, "monitoring.backlogFor"),
        spool_percent=_int(c, "monitoring.spoolPercent"),
        rollout_window=_str(c, "monitoring.rolloutWindow"),
    )


def _monitoring_problems(monitoring: MonitoringConfig) -> list[str]:
    if not monitoring.enabled:
        return []
    # Imported here: only a stack with monitoring on needs the service's histogram buckets.
    from service.observability import LATENCY_BUCKETS

    problems = []
    if not (0 < monitoring.availability_slo < 100 and 0 < monitoring.latency_slo < 100):
        problems.append("monitoring.availabilitySlo and monitoring.latencySlo must be percentages below 100")
    if monitoring.latency_threshold_s not in LATENCY_BUCKETS:
        problems.append(f"monitoring.latencyThresholdSeconds must be a histogram bucket bound: {LATENCY_BUCKETS}")
    if not 1 <= monitoring.spool_percent <= 100 or monitoring.oldest_unflushed_s < 1:
        problems.append("monitoring.spoolPercent must be within 1..100 and monitoring.oldestUnflushedSeconds >= 1")
    for key, value in (("scrapeInterval", monitoring.scrape_interval), ("backlogFor", monitoring.backlog_for),
                       ("rolloutWindow", monitoring.rollout_window)):  # fmt: skip
        if not _DURATION.match(value):
            problems.append(f"monitoring.{key} must be a duration such as 30s, 5m or 1h, got {value!r}")
    if not monitoring.scraper_namespace or not monitoring.runbook_url.startswith("https://"):
        problems.append("monitoring.scraperNamespace must be set and monitoring.runbookUrl must be an https:// URL")
    return problems
