"""The service's pods, Service, PodDisruptionBudget and API keys (`namespace`, `service.*`, `pdb.*`, `auth.*`)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra import contract
from infra.config import read, settings_bridge
from infra.config.autoscaling import AutoscalingConfig
from service.run import PORT
from service.run import SHUTDOWN_GRACE_S as SHUTDOWN_GRACE_S  # re-exported for the components

# docs/architecture.md, "Service": the container port and the uvicorn graceful shutdown budget, owned by the
# service's run command (service/run.py), which the image's CMD is tested against.
CONTAINER_PORT = PORT

SECRETS = (contract.API_KEYS,)


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


def load(c: pulumi.Config, stack: str) -> ServiceConfig:
    namespace = read.string(c, "namespace")
    settings, texts = settings_bridge.read_settings(c)
    return ServiceConfig(
        namespace=namespace if namespace else f"modelship-{stack}",
        create_namespace=namespace == "",
        replicas=read.integer(c, "service.replicas"),
        service_type=read.string(c, "service.type"),
        service_port=read.integer(c, "service.port"),
        cpu_request=read.string(c, "service.cpuRequest"),
        cpu_limit=read.string(c, "service.cpuLimit"),
        memory_request=read.string(c, "service.memoryRequest"),
        memory_limit=read.string(c, "service.memoryLimit"),
        spool_max_bytes=settings.spool_max_bytes,
        spool_size_limit=read.string(c, "service.spoolSizeLimit"),
        settings_env={settings_bridge.env_var(name): text for name, text in texts.items()},
        auth_required=read.boolean(c, contract.AUTH_REQUIRED),
        api_keys=read.secret(c, contract.API_KEYS),
        pdb_min_available=read.integer(c, "pdb.minAvailable"),
    )


def secret_problems(c: pulumi.Config) -> list[str]:
    if read.boolean(c, contract.AUTH_REQUIRED) and not read.secret_text(c, contract.API_KEYS):
        keys = contract.API_KEYS
        return [f"{contract.AUTH_REQUIRED} is true but {keys} is empty: pulumi config set --secret {keys}"]
    return []


def problems(svc: ServiceConfig, hpa: AutoscalingConfig) -> list[str]:
    found = []
    if svc.service_type not in ("ClusterIP", "LoadBalancer"):
        found.append("service.type must be ClusterIP or LoadBalancer")
    if svc.replicas < 1:
        found.append("service.replicas must be at least 1")
    if hpa.enabled and not 1 <= hpa.min_replicas <= svc.replicas <= hpa.max_replicas:
        found.append("need 1 <= hpa.minReplicas <= service.replicas <= hpa.maxReplicas")
    floor = hpa.min_replicas if hpa.enabled else svc.replicas
    if svc.pdb_min_available and svc.pdb_min_available >= floor:
        found.append("pdb.minAvailable must be below the minimum replica count, or no node could drain")
    return found
