"""Stage `release`: the whole checked path for one stack, undone automatically when a check fails.

train -> gate -> deploy -> smoke -> loadcheck. A failed gate stops before anything changes; a failed
deploy, smoke test or load check rolls the stack back to its previous good update.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import commands
from pipelines.baseline import stack_baseline
from pipelines.deploy import DeployResult, deploy
from pipelines.errors import ConfigError, UpdateFailedError
from pipelines.gate import GatePolicy, GateResult, gate, gate_options, policy_from_args, read_manifest
from pipelines.rollback import RollbackResult, roll_back_after_failure, verify_or_roll_back
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target
from pipelines.targets.base import OnOutput, Target
from pipelines.train import TrainStageResult, train, train_options
from pipelines.verify import Checkers, VerifyOptions, VerifyResult, options_from_args

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
    else:
        read_manifest(artifact)  # a wrong path is a one-line error before anything reads the stack
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
        undone, why = roll_back_after_failure(target, stack, checkers, on_output)
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
    guarded = verify_or_roll_back(target, deployed, version, verify_options, checkers, on_output)
    checked = guarded.verification
    return ReleaseResult(
        stack,
        checked.passed,
        checked.failed_check,
        version,
        trained,
        gated,
        deployed,
        checked,
        guarded.rollback,
        error=guarded.error,
    )


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    commands.stack_options(parser)
    train_options(parser, required=False)
    parser.add_argument("--artifact", type=Path, help="release this artifact instead of training one")
    commands.image_option(parser)
    commands.message_option(parser)
    commands.config_option(parser)
    gate_options(parser)
    commands.verify_options(parser)


def _print(result: ReleaseResult) -> None:
    if result.gate is not None:
        commands.out(result.gate.table())
    if result.verification is not None:
        commands.out(result.verification.smoke.summary())
        if result.verification.loadcheck is not None:
            commands.out(result.verification.loadcheck.verdict)
    if result.rollback is not None:
        commands.out(result.rollback.summary())
    verdict = "released" if result.passed else f"FAILED at {result.failed_stage}"
    reason = f" ({result.error})" if result.error else ""
    commands.out(f"release of {result.model_version} to {result.stack}: {verdict}{reason}")


def describe_release(stack: str, artifact: Path | None, spec: TrainSpec) -> str:
    """The update's message: what was released, so two releases with other parameters read differently."""
    if artifact is not None:
        return f"release {Path(artifact).name} to {stack}"
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted((spec.overrides or {}).items())) or "defaults"
    return f"release {spec.recipe} ({params}, seed {spec.seed}) to {stack}"


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    spec = TrainSpec(
        args.recipe or settings.recipe,
        args.out or settings.artifacts_dir,
        args.seed,
        commands.pairs(args.overrides, "--set"),
    )
    result = release(
        get_target(args.target, settings),
        args.stack,
        message=commands.message(args, describe_release(args.stack, args.artifact, spec)),
        policy=policy_from_args(args, settings),
        verify_options=options_from_args(args, settings, args.stack),
        artifact=args.artifact,
        train_spec=spec,
        image_ref=args.image,
        extra_config=commands.raw_pairs(args.config),
        on_output=commands.stream,
    )
    _print(result)
    return commands.finish(args, "release", result, result.passed)


STAGE = commands.Stage("release", "train, gate, deploy, smoke, load-check; roll back on failure", _add_arguments, _run)
