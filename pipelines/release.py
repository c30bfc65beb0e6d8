"""Stage `release`: the whole checked path for one stack, undone automatically when a check fails.

train -> gate -> deploy -> smoke -> loadcheck. A failed gate stops before anything changes; a failed
deploy, smoke test or load check rolls the stack back to its previous good update.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.baseline import stack_baseline
from pipelines.deploy import DeployResult, deploy
from pipelines.errors import ConfigError, NothingToRollBackError, UpdateFailedError
from pipelines.gate import GatePolicy, GateResult, gate
from pipelines.rollback import RollbackResult, rollback
from pipelines.targets.base import OnOutput, Target
from pipelines.train import TrainStageResult, train
from pipelines.verify import Checkers, VerifyOptions, VerifyResult, verify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSpec:
    recipe: str
    out_dir: Path
    seed: int = 42
    overrides: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ReleaseResult:
    stack: str
    passed: bool
    failed_stage: str | None
    model_version: str | None
    train: TrainStageResult | None
    gate: GateResult | None
    deploy: DeployResult | None
    verification: VerifyResult | None
    rollback: RollbackResult | None
    error: str | None = None


def _roll_back(
    target: Target, stack: str, checkers: Checkers | None, on_output: OnOutput | None
) -> tuple[RollbackResult | None, str | None]:
    try:
        return rollback(target, stack, checkers=checkers, on_output=on_output), None
    except NothingToRollBackError as exc:
        log.error("automatic rollback impossible: %s", exc)
        return None, str(exc)


def release(
    target: Target,
    stack: str,
    *,
    message: str,
    policy: GatePolicy,
    verify_options: VerifyOptions,
    artifact: Path | None = None,
    train_spec: TrainSpec | None = None,
    image_ref: str | None = None,
    extra_config: Mapping[str, str] | None = None,
    checkers: Checkers | None = None,
    on_output: OnOutput | None = None,
) -> ReleaseResult:
    """Train (unless ARTIFACT is given), gate against STACK's deployed model, deploy, smoke, load-check.

    Args:
        target: where the stack lives (`local` or `pulumi`).
        stack: the stack to release to.
        message: the update message (git sha, PR).
        policy: the gate's tolerance, floors and --allow-breaking.
        verify_options: the load-check profile, report folder and duration.
        artifact: release this artifact instead of training one.
        train_spec: what to train when no artifact is given.
        image_ref: the serving image by digest (required on pulumi).
        extra_config: other stack settings passed to deploy (`--config key=value`).
        checkers: the post-deploy check implementations (tests inject them).
        on_output: receives `up`'s output line by line.

    Returns:
        ReleaseResult; `passed` is False when any stage failed, `failed_stage` names it and
        `rollback` says what the automatic rollback did.
    """
    trained = None
    if artifact is None:
        if train_spec is None:
            raise ConfigError("release needs --artifact or a recipe to train")
        trained = train(train_spec.recipe, train_spec.out_dir, train_spec.seed, train_spec.overrides)
        artifact = trained.path
    base = stack_baseline(target, stack)
    gated = gate(
        artifact,
        base.manifest if base else None,
        policy,
        base.source if base else f"none: nothing deployed on {stack} yet",
    )
    version = gated.candidate_version
    if not gated.passed:
        return ReleaseResult(stack, False, "gate", version, trained, gated, None, None, None)
    try:
        deployed = deploy(
            target,
            stack,
            artifact,
            message=message,
            image_ref=image_ref,
            extra_config=extra_config,
            on_output=on_output,
        )
    except UpdateFailedError as exc:
        log.error("deploy of %s to %s failed; rolling back", version, stack)
        undone, why = _roll_back(target, stack, checkers, on_output)
        return ReleaseResult(
            stack,
            False,
            "deploy",
            version,
            trained,
            gated,
            None,
            None,
            undone,
            error=f"{exc}" + (f"; {why}" if why else ""),
        )
    checked = verify(target.select(stack), deployed.update, deployed.url or "", version, verify_options, checkers)
    if checked.passed:
        return ReleaseResult(stack, True, None, version, trained, gated, deployed, checked, None)
    log.error("%s failed for %s on %s; rolling back", checked.failed_check, version, stack)
    undone, why = _roll_back(target, stack, checkers, on_output)
    return ReleaseResult(
        stack, False, checked.failed_check, version, trained, gated, deployed, checked, undone, error=why
    )
