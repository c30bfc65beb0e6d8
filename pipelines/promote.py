"""Stage `promote`: deploy to the next environment exactly what the previous one verified. No rebuild."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pipelines.deploy import DeployResult, apply_config
from pipelines.errors import StageError
from pipelines.rollback import RollbackResult, rollback
from pipelines.targets.base import FAIL, LOADCHECK, PASS, SMOKE, OnOutput, Target, Update, deployed_update
from pipelines.verify import Checkers, VerifyOptions, VerifyResult, verify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromoteResult:
    source: str
    destination: str
    source_update: int
    model_version: str | None
    image_ref: str | None
    deploy: DeployResult
    verification: VerifyResult | None
    rollback: RollbackResult | None
    passed: bool


def verified_update(target: Target, stack: str) -> Update:
    """The update SOURCE runs now, provided its smoke test passed and no load check failed."""
    current = deployed_update(target.select(stack).history())
    if current is None:
        raise StageError(f"nothing to promote: {stack} has no successful update")
    if current.annotations.get(SMOKE) != PASS or current.annotations.get(LOADCHECK) == FAIL:
        raise StageError(
            f"refusing to promote {current.model_version} from {stack}: update #{current.number} is not "
            f"verified there (smoke={current.annotations.get(SMOKE, 'not run')}, "
            f"loadcheck={current.annotations.get(LOADCHECK, 'not run')}). Run smoke/loadcheck on {stack} first."
        )
    return current


def promote(
    target: Target,
    source: str,
    destination: str,
    *,
    message: str | None = None,
    verify_options: VerifyOptions | None = None,
    checkers: Checkers | None = None,
    on_output: OnOutput | None = None,
) -> PromoteResult:
    """Copy the image digest and artifact of SOURCE's verified update to DESTINATION and run `up`.

    Args:
        target: where both stacks live.
        source: the stack whose current, verified deployment is promoted (e.g. staging).
        destination: the stack to deploy to (e.g. prod).
        message: the update message (default names the source update).
        verify_options: when given, smoke and load-check DESTINATION and roll back if either fails.
        checkers: the check implementations (tests inject them).
        on_output: receives `up`'s output line by line.

    Returns:
        PromoteResult; `passed` is False when a post-deploy check failed (and it was rolled back).
    """
    chosen = verified_update(target, source)
    text = message or f"promote {chosen.model_version} from {source} (update #{chosen.number})"
    handle = target.select(destination, create=True)
    deployed = apply_config(handle, target.kind, chosen.deploy_config(), text, on_output)
    if verify_options is None or not deployed.url:
        return PromoteResult(
            source, destination, chosen.number, chosen.model_version, chosen.image_ref, deployed, None, None, True
        )
    checked = verify(handle, deployed.update, deployed.url, deployed.model_version, verify_options, checkers)
    undone = None
    if not checked.passed:
        log.warning("%s failed on %s after promotion; rolling back", checked.failed_check, destination)
        undone = rollback(target, destination, checkers=checkers, on_output=on_output)
    return PromoteResult(
        source,
        destination,
        chosen.number,
        chosen.model_version,
        chosen.image_ref,
        deployed,
        checked,
        undone,
        checked.passed,
    )
