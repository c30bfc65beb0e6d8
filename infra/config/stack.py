"""The whole stack: every domain read once, then the checks that need more than one key."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra import contract
from infra.config import autoscaling, canary, database, gpu, image, monitoring, read, retention, shadow, workload

# Keys that hold credentials, as each domain names them. Read only with read.secret, set only with
# `pulumi config set --secret`.
SECRET_KEYS = (*image.SECRETS, *workload.SECRETS, *database.SECRETS)


@dataclass(frozen=True)
class StackConfig:
    stack: str
    image: image.ImageConfig
    service: workload.ServiceConfig
    autoscaling: autoscaling.AutoscalingConfig
    database: database.DatabaseConfig
    retention: retention.RetentionConfig
    gpu: gpu.GpuConfig
    protect: bool = False  # Pulumi `protect` on the Namespace and the CNPG Cluster (docs/deploy.md)
    monitoring: monitoring.MonitoringConfig | None = None  # None only for StackConfig built by hand in tests
    canary: canary.CanaryConfig | None = None  # None only for StackConfig built by hand in tests
    shadow: shadow.ShadowConfig | None = None  # None only for StackConfig built by hand in tests


def load(config: pulumi.Config, stack: str) -> StackConfig:
    """Read and check the whole stack configuration."""
    _check_secrets(config)
    stack_config = StackConfig(
        stack=stack,
        image=image.load(config),
        service=workload.load(config, stack),
        autoscaling=autoscaling.load(config),
        database=database.load(config),
        retention=retention.load(config),
        gpu=gpu.load(config),
        protect=read.boolean(config, contract.PROTECT),
        monitoring=monitoring.load(config),
        canary=canary.load(config),
        shadow=shadow.load(config),
    )
    _check(stack_config)
    return stack_config


def _check(stack: StackConfig) -> None:
    """Fail before any resource is declared when the combination cannot work."""
    problems = [*image.problems(stack.image), *workload.problems(stack.service, stack.autoscaling)]
    problems += [*autoscaling.problems(stack.autoscaling), *database.problems(stack.database)]
    problems += [*retention.problems(stack.retention), *gpu.problems(stack.gpu)]
    problems += monitoring.problems(stack.monitoring) if stack.monitoring else []
    if stack.canary:
        i = stack.image
        problems += canary.problems(stack.canary, i.model_version, builds_images=bool(i.repository))
    problems += shadow.problems(stack.shadow) if stack.shadow else []
    if problems:
        raise read.invalid(problems)


def _check_secrets(c: pulumi.Config) -> None:
    """Secrets a setting depends on must be set. Only emptiness and shape are looked at, nothing is kept."""
    problems = [*workload.secret_problems(c), *database.secret_problems(c), *image.secret_problems(c)]
    if problems and pulumi.runtime.is_dry_run():
        # A preview in a pull request holds no environment secrets by design (docs/deploy.md): the deploy job
        # stores them right before `up`, which still refuses without them.
        for problem in problems:
            pulumi.log.warn(f"preview without a secret `up` needs: {problem}")
        return
    if problems:
        raise read.invalid(problems)
