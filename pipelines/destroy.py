"""Stage `destroy`: tear down an ephemeral stack (pr-<n>) and remove it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pipelines.errors import ConfigError
from pipelines.targets.base import OnOutput, Target

log = logging.getLogger(__name__)

PROTECTED = frozenset({"dev", "staging", "prod"})


@dataclass(frozen=True)
class DestroyResult:
    stack: str
    target: str


def destroy(target: Target, stack: str, on_output: OnOutput | None = None) -> DestroyResult:
    """Destroy every resource of STACK and remove the stack itself.

    Args:
        target: where the stack lives.
        stack: an ephemeral stack; dev, staging and prod are refused except on the local target, where
            destroying one just stops its service and deletes its local state.
        on_output: receives the destroy's output line by line.

    Returns:
        DestroyResult naming what was removed.
    """
    if stack in PROTECTED and target.kind != "local":
        raise ConfigError(f"refusing to destroy {stack}: only ephemeral stacks (pr-<n>) are destroyed here")
    target.select(stack).destroy(on_output)
    log.info("destroyed %s (%s)", stack, target.kind)
    return DestroyResult(stack, target.kind)
