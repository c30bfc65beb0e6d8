"""What every stage's command shares: the `Stage` a module registers, options declared once, output and records.

A stage module ends with `STAGE = Stage(name, help, add_arguments, run)`; `pipelines.cli` finds it there.
`run` turns arguments into one call of the stage's function, prints the result and writes the record.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.keyvalue import parse_pairs
from pipelines.errors import ConfigError
from pipelines.report import git_head, write_record
from pipelines.settings import PipelineSettings
from pipelines.targets import TARGETS, Stack, get_target
from pipelines.targets.base import FAIL, PASS, deployed_update, reachable_url

Handler = Callable[[argparse.Namespace, PipelineSettings], bool]


@dataclass(frozen=True)
class Stage:
    """One CLI stage, declared next to the code it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Handler  # returns whether the stage passed: the exit code


# ---- options shared by several stages, declared once ------------------------------------------------------


def target_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="local",
        help="local: this machine (default); pulumi: the Kubernetes stacks via Pulumi",
    )


def stack_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--stack", required=required, help="dev, staging, prod or pr-<n>")
    target_option(parser)


def url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="service URL (default: the stack's serviceUrl output)")


def message_option(parser: argparse.ArgumentParser, text: str | None = None) -> None:
    parser.add_argument("--message", help=text)


def loadcheck_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="loadtest profile (default: the stack's name, `local` locally)")
    parser.add_argument("--duration", type=float, help="load-check duration in seconds (profile's by default)")
    parser.add_argument(
        "--reports", type=Path, help="load-check report folder (default reports/loadcheck/<stack>, else <profile>)"
    )


def verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-loadcheck", action="store_true", help="skip the load check after the smoke test")
    loadcheck_options(parser)


def config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra stack config (repeatable), e.g. db.installOperator=false for a PR stack",
    )


def canary_options(parser: argparse.ArgumentParser) -> None:
    """The options of a canary run, shared with `promote --canary`."""
    parser.add_argument("--steps", help="canary weights in percent, e.g. 10,50 (default: the policy's)")
    parser.add_argument("--step-seconds", type=float, help="least duration of a step (default: the policy's)")
    parser.add_argument("--min-samples", type=int, help="live requests per arm before a step is judged")
    parser.add_argument("--policy", type=Path, help="canary policy TOML (default pipelines/canary_policy.toml)")
    parser.add_argument("--prometheus", help="Prometheus API URL to count each version's 5xx (pulumi stacks)")
    parser.add_argument("--stable-metrics", action="append", default=[], metavar="URL", help="a stable /metrics")
    parser.add_argument("--canary-metrics", action="append", default=[], metavar="URL", help="a canary /metrics")
    parser.add_argument("--metrics-file", type=Path, help="Prometheus textfile (default reports/canary/<stack>.prom)")
    from pipelines.logdb import database_option  # logdb uses these options too: imported when needed

    database_option(parser)


def image_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", help="serving image by digest (pulumi): <registry>/modelship@sha256:...")


# ---- output, records and argument parsing helpers -----------------------------------------------------------


def out(text: str) -> None:
    print(text, flush=True)


def stream(line: str) -> None:
    print(line.rstrip("\n"), file=sys.stderr, flush=True)


def pairs(items: list[str], what: str, parse: bool = True) -> dict[str, Any]:
    """KEY=VALUE arguments; values are JSON when they parse (numbers, booleans, null) unless parse=False."""
    try:
        return parse_pairs(items, what, parse_json=parse)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def raw_pairs(items: list[str]) -> dict[str, str]:
    """`--config` values stay strings: Pulumi config is text ("false", "3")."""
    return {key: str(value) for key, value in pairs(items, "--config", parse=False).items()}


def finish(args: argparse.Namespace, stage: str, result: Any, passed: bool) -> bool:
    if args.record:
        write_record(args.record, stage, result, passed)
    return passed


def default_message(action: str) -> str:
    """What the update history shows as the message: the action, then the PR or commit that asked for it."""
    sha = os.environ.get("GITHUB_SHA") or git_head() or ""
    ref = os.environ.get("GITHUB_REF", "")
    where = f"PR #{ref.split('/')[2]} " if ref.startswith("refs/pull/") else ""
    return f"{action} ({where}git {sha[:12]})" if sha else action


def message(args: argparse.Namespace, action: str) -> str:
    return str(args.message) if args.message else default_message(action)


def api_key(settings: PipelineSettings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


def stack_url(args: argparse.Namespace, settings: PipelineSettings) -> tuple[str, Stack | None]:
    """`--url`, else the serviceUrl output of `--stack`, with the stack's handle to annotate."""
    if args.url:
        return str(args.url), None
    if not args.stack:
        raise ConfigError("give --url, or --stack (and --target) to use the stack's serviceUrl output")
    handle = get_target(args.target, settings).select(args.stack)
    url = reachable_url(handle.outputs())
    if not url:
        raise ConfigError(f"stack {args.stack} has no serviceUrl/externalAddress output; deploy it first")
    return str(url), handle


def annotate_current(handle: Stack | None, key: str, passed: bool) -> None:
    if handle is not None and (current := deployed_update(handle.history())) is not None:
        handle.annotate(current.number, key, PASS if passed else FAIL)
