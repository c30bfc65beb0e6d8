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
    destination_path: str
    endpoint_url: str
    retention: str
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]


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
        monitoring=_monitoring(config),
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


def _database(c: pulumi.Config) -> DatabaseConfig:
    destination = c.require("db.backup.destinationPath")
    backup = None
    if destination:
        backup = BackupConfig(
            destination_path=destination,
            endpoint_url=c.require("db.backup.endpointUrl"),
            retention=c.require("db.backup.retention"),
            access_key_id=c.require_secret("db.backup.accessKeyId"),
            secret_access_key=c.require_secret("db.backup.secretAccessKey"),
        )
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
        backup=backup,
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
    problems += _monitoring_problems(s.monitoring) if s.monitoring else []
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
    if c.require("db.backup.destinationPath") and not (
        raw("db.backup.accessKeyId") and raw("db.backup.secretAccessKey")
    ):
        problems.append("backups need db.backup.accessKeyId and db.backup.secretAccessKey (set them with --secret)")
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


# --- monitoring ----------------------------------------------------------------------------------

_DURATION = re.compile(r"^[1-9][0-9]*(s|m|h)$")
_LABEL_PAIR = re.compile(r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$")


def _number(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{key} must be a number such as 99.9, got {value!r}") from None


def _labels(key: str, value: str) -> dict[str, str]:
    pairs = [p.strip() for p in value.split(",") if p.strip()]
    if not all(_LABEL_PAIR.match(p) for p in pairs):
        raise ConfigError(f"{key} must be comma-separated key=value label pairs, got {value!r}")
    return dict(p.split("=", 1) for p in pairs)


def _monitoring(c: pulumi.Config) -> MonitoringConfig:
    return MonitoringConfig(
        enabled=c.require_bool("monitoring.enabled"),
        scraper_namespace=c.require("monitoring.scraperNamespace"),
        scrape_interval=c.require("monitoring.scrapeInterval"),
        selector_labels=_labels("monitoring.selectorLabels", c.require("monitoring.selectorLabels")),
        dashboard_label=c.require("monitoring.dashboardLabel"),
        runbook_url=c.require("monitoring.runbookUrl"),
        availability_slo=_number("monitoring.availabilitySlo", c.require("monitoring.availabilitySlo")),
        latency_slo=_number("monitoring.latencySlo", c.require("monitoring.latencySlo")),
        latency_threshold_s=_number(
            "monitoring.latencyThresholdSeconds", c.require("monitoring.latencyThresholdSeconds")
        ),
        oldest_unflushed_s=c.require_int("monitoring.oldestUnflushedSeconds"),
        backlog_for=c.require("monitoring.backlogFor"),
        spool_percent=c.require_int("monitoring.spoolPercent"),
        rollout_window=c.require("monitoring.rolloutWindow"),
    )


def _monitoring_problems(m: MonitoringConfig) -> list[str]:
    if not m.enabled:
        return []
    # Imported here: only a stack with monitoring on needs the service's histogram buckets.
    from service.observability import LATENCY_BUCKETS

    problems = []
    if not (0 < m.availability_slo < 100 and 0 < m.latency_slo < 100):
        problems.append("monitoring.availabilitySlo and monitoring.latencySlo must be percentages below 100")
    if m.latency_threshold_s not in LATENCY_BUCKETS:
        problems.append(f"monitoring.latencyThresholdSeconds must be a histogram bucket bound: {LATENCY_BUCKETS}")
    if not 1 <= m.spool_percent <= 100 or m.oldest_unflushed_s < 1:
        problems.append("monitoring.spoolPercent must be within 1..100 and monitoring.oldestUnflushedSeconds >= 1")
    for key, value in (("scrapeInterval", m.scrape_interval), ("backlogFor", m.backlog_for),
                       ("rolloutWindow", m.rollout_window)):  # fmt: skip
        if not _DURATION.match(value):
            problems.append(f"monitoring.{key} must be a duration such as 30s, 5m or 1h, got {value!r}")
    if not m.scraper_namespace or not m.runbook_url.startswith("https://"):
        problems.append("monitoring.scraperNamespace must be set and monitoring.runbookUrl must be an https:// URL")
    return problems
