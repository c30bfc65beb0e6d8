"""Stage `destroy`: tear down an ephemeral stack (pr-<n>) and remove it."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from pipelines import commands
from pipelines.errors import ConfigError
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target
from pipelines.targets.base import PROTECT_KEY, OnOutput, Target

log = logging.getLogger(__name__)

PROTECTED = frozenset({"dev", "staging", "prod"})

PROTECTED_HELP = (
    "refusing to destroy {stack}: it sets {key}=true, so Pulumi protects its Namespace and Postgres Cluster "
    "(the prediction log and its volumes) and Pulumi refuses to delete them. If the data really must go, take a "
    "final backup (docs/runbook.md), then lift the protection with `pulumi config set protect false --stack "
    "{stack}` and `pulumi up --stack {stack}`, and run destroy again."
)


@dataclass(frozen=True)
class DestroyResult:
    stack: str
    target: str


def destroy(target: Target, stack: str, on_output: OnOutput | None = None) -> DestroyResult:
    """Destroy every resource of STACK and remove the stack itself.

    Args:
        target: where the stack lives.
        stack: an ephemeral stack; dev, staging and prod are refused except on the local target, where
            destroying one just stops its service and deletes its local state. A stack that sets
            `protect` true (docs/deploy.md) is refused on every target.
        on_output: receives the destroy's output line by line.

    Returns:
        DestroyResult naming what was removed.
    """
    if stack in PROTECTED and target.kind != "local":
        raise ConfigError(f"refusing to destroy {stack}: only ephemeral stacks (pr-<n>) are destroyed here")
    selected = target.select(stack)
    # Pulumi refuses too (its preview fails on a protected resource); this names the setting and the way out.
    if (selected.get_config(PROTECT_KEY) or "").strip().lower() == "true":
        raise ConfigError(PROTECTED_HELP.format(stack=stack, key=PROTECT_KEY))
    selected.destroy(on_output)
    log.info("destroyed %s (%s)", stack, target.kind)
    return DestroyResult(stack, target.kind)


# ---- command line --------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = destroy(get_target(args.target, settings), args.stack, on_output=commands.stream)
    commands.out(f"destroyed {result.stack}")
    return commands.finish(args, "destroy", result, True)


STAGE = commands.Stage("destroy", "destroy and remove an ephemeral stack (pr-<n>)", commands.stack_options, _run)
