"""Shared helpers of the infra tests: session-cached program runs and views of what they captured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.runtime.rpc import is_rpc_secret

from infra import mocked_run
from infra.mocked_run import Captured, ProgramRun

STACKS = ("dev", "staging", "prod")

# Values that must never appear outside a Pulumi secret in anything the program declares.
SECRETS = {
    "image.registryPassword": "LEAK-registry-password",
    "auth.apiKeys": "LEAK-api-key-1 predict,read",
    "db.url": "postgresql://svc:LEAK-db-password@db.example.com:5432/modelship",
    "db.backup.accessKeyId": "LEAK-backup-key-id",
    "db.backup.secretAccessKey": "LEAK-backup-secret-key",
}
LEAK_MARKER = "LEAK-"
MOCK_PASSWORD_PREFIX = "mockpw"  # what the mocks return as the generated database password

# A GKE GPU pool on top of prod: the "one switch", plus where the pool goes.
GPU_ON = {
    "gpu.enabled": True,
    "gpu.cluster": "ml-cluster",
    "gpu.location": "europe-west4",
    "gpu.baseImage": "registry.example.com/cuda-python:12.6-py3.11",
}

# Backups on for any stack (prod has them on already), and a restore of prod's backups into a new stack.
BACKUPS_ON = {"db.backup.enabled": True, "db.backup.destinationPath": "s3://modelship-backups/test"}
RESTORE = {
    "db.restore.sourcePath": "s3://modelship-backups/prod",
    "db.restore.endpointUrl": "https://storage.googleapis.com",
}

_cache: dict[tuple[str, tuple[tuple[str, str], ...]], ProgramRun] = {}


def run_stack(stack: str, overrides: Mapping[str, Any] | None = None) -> ProgramRun:
    """The program run for STACK with OVERRIDES on top of its stack file, computed once per session."""
    key = (stack, tuple(sorted((k, repr(v)) for k, v in (overrides or {}).items())))
    if key not in _cache:
        config, secret_keys = mocked_run.load_stack_config(stack, overrides=overrides, secrets=SECRETS)
        _cache[key] = mocked_run.run_program(stack, config, secret_keys)
    return _cache[key]


def unwrapped(value: Any) -> Any:
    """Inputs as CrossGuard hands them to a policy: Pulumi secrets unwrapped to their values."""
    if is_rpc_secret(value):
        return unwrapped(value["value"])
    if isinstance(value, Mapping):
        return {k: unwrapped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrapped(v) for v in value]
    return value


def pod_spec(run: ProgramRun) -> dict[str, Any]:
    spec: dict[str, Any] = run.one("Deployment").inputs["spec"]["template"]["spec"]
    return spec


def container(run: ProgramRun) -> dict[str, Any]:
    containers = pod_spec(run)["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def settings_config_map(run: ProgramRun) -> Captured:
    """The service's settings ConfigMap (a stack with monitoring on has a dashboard ConfigMap too)."""
    found = [c for c in run.of_kind("ConfigMap") if c.name == "modelship-settings"]
    assert len(found) == 1, [c.name for c in run.of_kind("ConfigMap")]
    return found[0]
