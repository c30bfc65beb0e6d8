"""Deployment targets behind one protocol: `local` (this machine) and `pulumi` (Kubernetes via Pulumi)."""

from __future__ import annotations

from pipelines.errors import ConfigError
from pipelines.settings import PipelineSettings
from pipelines.targets.base import Stack, Target, Update, UpOutcome

TARGETS = ("local", "pulumi")

__all__ = ["TARGETS", "Stack", "Target", "UpOutcome", "Update", "get_target"]


def get_target(kind: str, settings: PipelineSettings) -> Target:
    """Build the target named on the command line (`--target local|pulumi`)."""
    if kind == "local":
        from pipelines.targets.local import LocalTarget

        return LocalTarget(settings)
    if kind == "pulumi":
        # Imported lazily: the Automation API needs the pulumi CLI only when it is actually used.
        from pipelines.targets.pulumi_target import PulumiTarget

        return PulumiTarget(settings.pulumi_work_dir, settings.pulumi_org)
    raise ConfigError(f"unknown target {kind!r}; choose one of {', '.join(TARGETS)}")
