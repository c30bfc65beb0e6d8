"""Stage `canary`: `canary --artifact DIR` runs a candidate as a canary and promotes or aborts it; `canary abort`
removes a stack's canary by hand (a dead driver's orphan included). The driver is pipelines/canary_driver.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipelines import commands, logdb
from pipelines.canary_driver import CanaryDriver, abort
from pipelines.canary_errors import ErrorSource, PrometheusArms, ScrapedArms
from pipelines.canary_policy import CanaryPolicy, load_policy, with_steps
from pipelines.canary_report import CanaryResult
from pipelines.canary_state import read_state
from pipelines.deploy import deploy_config
from pipelines.errors import ConfigError
from pipelines.settings import PipelineSettings
from pipelines.targets import Stack, get_target

ABORT = "abort"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=[ABORT], help="abort: remove the stack's canary now")
    commands.stack_options(parser)
    parser.add_argument("--artifact", type=Path, help="the candidate artifact (required unless abort)")
    commands.image_option(parser)
    commands.message_option(parser)
    commands.canary_options(parser)


def _weights(raw: str | None) -> list[int] | None:
    if raw is None:
        return None
    try:
        return [int(part) for part in raw.split(",")]
    except ValueError:
        raise ConfigError(f"--steps takes percents separated by commas (e.g. 10,50), got {raw!r}") from None


def policy_from_args(args: argparse.Namespace) -> CanaryPolicy:
    base = load_policy(args.policy)
    return with_steps(base, weights=_weights(args.steps), seconds=args.step_seconds, min_samples=args.min_samples)


def error_source(args: argparse.Namespace, stack: Stack) -> ErrorSource:
    """Where each arm's 5xx are counted: Prometheus, the /metrics URLs given, or the local stack's own processes."""
    if args.prometheus:
        return PrometheusArms(args.prometheus)
    if args.stable_metrics or args.canary_metrics:
        if not (args.stable_metrics and args.canary_metrics):
            raise ConfigError("give both --stable-metrics and --canary-metrics (one URL per process of each arm)")
        return ScrapedArms({"stable": args.stable_metrics, "canary": args.canary_metrics})
    arm_urls = getattr(stack, "arm_metrics_urls", None)  # the local target's stable and canary processes
    if callable(arm_urls):
        return ScrapedArms(arm_urls)  # read at each step: the canary's process starts with the first step
    raise ConfigError(
        "the canary counts each arm's 5xx from its /metrics: give --prometheus URL (pulumi), or "
        "--stable-metrics URL and --canary-metrics URL"
    )


def driver_from_args(args: argparse.Namespace, settings: PipelineSettings, stack: Stack, target: str) -> CanaryDriver:
    metrics = args.metrics_file or Path(settings.reports_dir) / "canary" / f"{stack.name}.prom"
    return CanaryDriver(
        stack,
        target,
        policy_from_args(args),
        logdb.stack_database_url(stack, args.database_url),
        error_source(args, stack),
        metrics,
        commands.stream,
    )


def write_canary_record(path: Path | None, result: CanaryResult) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.record(), indent=2) + "\n")


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    if args.action == ABORT:
        return _abort(args, settings)
    if args.artifact is None:
        raise ConfigError("canary needs --artifact DIR (the candidate), or `canary abort` to remove a canary")
    candidate = deploy_config(args.artifact, args.target, args.image)
    policy_from_args(args)  # a bad policy or flag is refused before the stack is touched
    stack = get_target(args.target, settings).select(args.stack)
    driver = driver_from_args(args, settings, stack, args.target)
    result = driver.run(candidate, commands.message(args, f"canary {args.artifact.name}"))
    write_canary_record(args.record, result)
    commands.out(result.summary())
    return result.passed


def _abort(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    stack = get_target(args.target, settings).select(args.stack)
    state = read_state(stack, load_policy(args.policy).steps.heartbeat_stale_seconds)
    done = abort(stack, args.target, commands.message(args, "canary abort"), commands.stream)
    commands.out(f"aborted: {state.describe()}; now update #{done.update}" if done else state.describe())
    return True


STAGE = commands.Stage(
    "canary", "run a candidate as a canary, promote or abort it (canary abort: now)", _add_arguments, _run
)
