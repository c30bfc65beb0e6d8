"""Stage `promote`: deploy to the next environment exactly what the previous one verified. No rebuild."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines import commands
from pipelines.canary_state import refuse_if_running
from pipelines.deploy import DeployResult, apply_config
from pipelines.errors import StageError
from pipelines.rollback import RollbackResult, verify_or_roll_back
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target
from pipelines.targets.base import FAIL, LOADCHECK, PASS, SMOKE, OnOutput, Target, Update, deployed_update
from pipelines.verify import Checkers, VerifyOptions, VerifyResult, options_from_args

if TYPE_CHECKING:
    from pipelines.canary_driver import CanaryDriver
    from pipelines.canary_report import CanaryResult


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
    error: str | None = None  # why a needed rollback was impossible
    canary: CanaryResult | None = None  # with --canary: the steps that promoted or aborted the candidate


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
    canary: CanaryDriver | None = None,
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
        canary: when given, the candidate goes through this driver's canary steps on DESTINATION first, and
            is promoted only if they all pass (an aborted canary leaves DESTINATION as it was).

    Returns:
        PromoteResult; `passed` is False when a post-deploy check failed or the canary aborted; `rollback` says
        what undid it, or `error` why nothing could (a first promotion has no earlier update to return to).
    """
    chosen = verified_update(target, source)
    text = message or f"promote {chosen.model_version} from {source} (update #{chosen.number})"
    handle = target.select(destination, create=True)
    ran: CanaryResult | None = None
    if canary is None:
        refuse_if_running(handle, None, target.kind, f"promote to {destination}")
        deployed = apply_config(handle, target.kind, chosen.deploy_config(), text, on_output)
    else:
        ran = canary.run(chosen.deploy_config(), text)
        assert canary.final is not None  # a run always ends with the update that promoted or aborted
        deployed = canary.final
        if not ran.passed:
            return PromoteResult(
                source, destination, chosen.number, chosen.model_version, chosen.image_ref, deployed, None, None,
                False, ran.reason, ran,
            )  # fmt: skip
    if verify_options is None or not deployed.url:
        return PromoteResult(
            source,
            destination,
            chosen.number,
            chosen.model_version,
            chosen.image_ref,
            deployed,
            None,
            None,
            True,
            None,
            ran,
        )
    guarded = verify_or_roll_back(target, deployed, deployed.model_version, verify_options, checkers, on_output)
    return PromoteResult(
        source,
        destination,
        chosen.number,
        chosen.model_version,
        chosen.image_ref,
        deployed,
        guarded.verification,
        guarded.rollback,
        guarded.verification.passed,
        guarded.error,
        ran,
    )


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True)
    parser.add_argument("--to", dest="destination", required=True)
    commands.target_option(parser)
    parser.add_argument(
        "--verify", action="store_true", help="smoke + load-check the destination, roll back on failure"
    )
    commands.message_option(parser)
    commands.verify_options(parser)
    parser.add_argument("--canary", action="store_true", help="promote through canary steps (docs/canary.md)")
    commands.canary_options(parser)
    parser.add_argument("--canary-record", type=Path, help="with --canary: the canary's own record (docs/canary.md)")
    parser.add_argument(
        "--require-shadow-agreement", type=float, metavar="X",
        help="refuse unless the destination's shadow of this version disagrees on at most X (0-1; docs/shadow.md)",
    )  # fmt: skip
    # --database-url (the destination's log, for --require-shadow-agreement too) comes with canary_options


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    options = options_from_args(args, settings, args.destination) if args.verify else None
    if args.require_shadow_agreement is not None:
        from pipelines.shadow import require_promotion_agreement

        require_promotion_agreement(args, settings, verified_update(get_target(args.target, settings), args.source))
    target = get_target(args.target, settings)
    driver = None
    if args.canary:
        from pipelines.canary import driver_from_args

        driver = driver_from_args(args, settings, target.select(args.destination), args.target)
    result = promote(
        target,
        args.source,
        args.destination,
        message=args.message,
        verify_options=options,
        on_output=commands.stream,
        canary=driver,
    )
    if result.canary is not None:
        commands.out(result.canary.summary())
        if args.canary_record:
            from pipelines.canary import write_canary_record

            write_canary_record(args.canary_record, result.canary)
    commands.out(
        f"promoted {result.model_version} ({result.image_ref}) from {result.source} update "
        f"#{result.source_update} to {result.destination} update #{result.deploy.update}"
    )
    if result.rollback is not None:
        commands.out(result.rollback.summary())
    if result.error:
        commands.out(f"automatic rollback impossible: {result.error}")
    return commands.finish(args, "promote", result, result.passed)


STAGE = commands.Stage("promote", "deploy the verified digest+artifact of one stack to another", _add_arguments, _run)
