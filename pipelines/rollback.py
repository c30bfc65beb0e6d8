"""Stage `rollback`: return a stack to an earlier successful update, then smoke-test it."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from pipelines import commands
from pipelines.canary_state import refuse_if_running
from pipelines.deploy import DeployResult, apply_config
from pipelines.errors import ConfigError, NothingToRollBackError, UnknownVersionError
from pipelines.settings import PipelineSettings
from pipelines.smoke import SmokeResult
from pipelines.targets import get_target
from pipelines.targets.base import FAIL, PASS, SMOKE, OnOutput, Target, Update, current_update
from pipelines.verify import Checkers, VerifyOptions, VerifyResult, verify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollbackResult:
    stack: str
    from_version: str | None
    to_version: str | None
    from_image: str | None
    to_image: str | None
    from_update: int | None
    source_update: int
    new_update: int | None
    url: str | None
    smoke: SmokeResult | None
    passed: bool

    def summary(self) -> str:
        return (
            f"rolled back {self.stack}: {self.from_version} -> {self.to_version} "
            f"(image {self.from_image} -> {self.to_image}; config of update #{self.source_update}, "
            f"now update #{self.new_update})"
        )


def _same_deploy(first: Update, second: Update) -> bool:
    return first.deploy_config() == second.deploy_config()


def _candidates(history: list[Update], current: Update) -> list[Update]:
    """Earlier successful updates worth returning to, newest first.

    If the current update succeeded, entries deploying the very same config are skipped (returning
    to them changes nothing); if it failed, the last good update is the obvious target even when it
    deployed the same config. Updates whose smoke or load check failed are never candidates.
    """
    older = [u for u in history if u.number < current.number and u.succeeded and not u.verified_bad]
    if current.succeeded:
        older = [u for u in older if not _same_deploy(u, current)]
    distinct: list[Update] = []
    for update in older:
        if not any(_same_deploy(update, seen) for seen in distinct):
            distinct.append(update)
    return distinct


def select_rollback_target(history: list[Update], to_version: str | None = None, steps: int = 1) -> Update:
    """Pick the update to return to (pure; unit-tested against recorded Pulumi histories).

    Args:
        history: the stack's history, newest first.
        to_version: the model version to return to; its newest good update is used.
        steps: how many distinct earlier deployments to go back (1 = the previous one).

    Returns:
        The Update whose config to re-apply.

    Raises:
        NothingToRollBackError: with a message saying why, and what is available.
    """
    current = current_update(history)
    if current is None:
        raise NothingToRollBackError("nothing to roll back: this stack has no updates in its history")
    candidates = _candidates(history, current)
    if to_version is not None:
        if current.succeeded and current.model_version == to_version:
            raise NothingToRollBackError(
                f"nothing to roll back: {to_version} is already deployed (update #{current.number})"
            )
        match = next((u for u in candidates if u.model_version == to_version), None)
        if match is None:
            known = ", ".join(sorted({str(u.model_version) for u in candidates})) or "none"
            ran = any(u.model_version == to_version for u in history)
            raise (NothingToRollBackError if ran else UnknownVersionError)(
                f"nothing to roll back to: no successful, verified update of {to_version} before update "
                f"#{current.number}. Versions available: {known}"
            )
        return match
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if len(candidates) < steps:
        raise NothingToRollBackError(
            f"nothing to roll back to: the stack has {len(candidates)} earlier good deployment(s) other than "
            f"the current one (update #{current.number}, {current.model_version}); --steps {steps} asks for "
            f"{steps}"
        )
    return candidates[steps - 1]


def rollback(
    target: Target,
    stack: str,
    *,
    message: str | None = None,
    to_version: str | None = None,
    steps: int = 1,
    checkers: Checkers | None = None,
    on_output: OnOutput | None = None,
    run_smoke: bool = True,
) -> RollbackResult:
    """Re-apply the config (model version, artifact, image digest) of an earlier good update, then smoke it.

    Args:
        target: where the stack lives (`local` or `pulumi`).
        stack: the stack to roll back.
        message: the update message (default says from what to what).
        to_version: a model version to return to, instead of the previous deployment.
        steps: how many distinct deployments to go back (ignored with to_version).
        checkers: the smoke implementation (tests inject one).
        on_output: receives `up`'s output line by line.
        run_smoke: smoke the result (on by default).

    Returns:
        RollbackResult saying from what to what; `passed` is False when the smoke test failed.

    Raises:
        NothingToRollBackError: when there is no earlier good update to return to.
    """
    handle = target.select(stack)
    refuse_if_running(handle, None, target.kind, f"roll back {stack}")
    history = handle.history()
    chosen = select_rollback_target(history, to_version, steps)
    current = current_update(history)
    if current is None:  # select_rollback_target has raised already; this satisfies the type checker
        raise NothingToRollBackError(f"nothing to roll back: {stack} has no updates")
    text = message or f"rollback {current.model_version} -> {chosen.model_version} (config of #{chosen.number})"
    log.info("%s", text)
    deployed = apply_config(handle, target.kind, chosen.deploy_config(), text, on_output)
    smoke_result = None
    if run_smoke and deployed.url:
        smoke_result = (checkers or Checkers()).smoke(deployed.url, chosen.model_version)
        if deployed.update is not None:
            handle.annotate(deployed.update, SMOKE, PASS if smoke_result.passed else FAIL)
    return RollbackResult(
        stack=stack,
        from_version=current.model_version,
        to_version=chosen.model_version,
        from_image=current.image_ref,
        to_image=chosen.image_ref,
        from_update=current.number,
        source_update=chosen.number,
        new_update=deployed.update,
        url=deployed.url,
        smoke=smoke_result,
        passed=smoke_result.passed if smoke_result else True,
    )


@dataclass(frozen=True)
class Guarded:
    """What `verify_or_roll_back` did: the checks' verdict, and the rollback a failed check caused."""

    verification: VerifyResult
    rollback: RollbackResult | None
    error: str | None  # why the automatic rollback was impossible (nothing earlier to return to)


def roll_back_after_failure(
    target: Target, stack: str, checkers: Checkers | None, on_output: OnOutput | None
) -> tuple[RollbackResult | None, str | None]:
    """Undo a failed release or promotion; with nothing to return to, say so rather than raise."""
    try:
        return rollback(target, stack, checkers=checkers, on_output=on_output), None
    except NothingToRollBackError as exc:
        log.error("automatic rollback impossible: %s", exc)
        return None, str(exc)


def verify_or_roll_back(
    target: Target,
    deployed: DeployResult,
    expected_version: str,
    options: VerifyOptions,
    checkers: Checkers | None = None,
    on_output: OnOutput | None = None,
) -> Guarded:
    """Smoke and load-check a fresh deployment; when a check fails, return its stack to its previous good update."""
    stack = deployed.stack
    checked = verify(target.select(stack), deployed.update, deployed.url or "", expected_version, options, checkers)
    if checked.passed:
        return Guarded(checked, None, None)
    log.error("%s failed for %s on %s; rolling back", checked.failed_check, expected_version, stack)
    undone, why = roll_back_after_failure(target, stack, checkers, on_output)
    return Guarded(checked, undone, why)


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    commands.stack_options(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--to", dest="to_version", metavar="VERSION", help="model version to return to")
    group.add_argument("--steps", type=int, default=1, help="distinct deployments to go back (default 1)")
    commands.message_option(parser)
    parser.add_argument("--no-smoke", action="store_true", help="do not smoke-test the result")


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = rollback(
        get_target(args.target, settings),
        args.stack,
        message=args.message,
        to_version=args.to_version or None,  # `--to ""` (an empty workflow input) means the default
        steps=args.steps,
        on_output=commands.stream,
        run_smoke=not args.no_smoke,
    )
    commands.out(result.summary())
    if result.smoke is not None:
        commands.out(result.smoke.summary())
    return commands.finish(args, "rollback", result, result.passed)


STAGE = commands.Stage("rollback", "return a stack to an earlier good update", _add_arguments, _run)
