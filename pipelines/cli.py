"""The command line: parse, call one stage, print its outcome, write its record, exit 0 or 1.

Progress goes to stderr through logging; stdout carries only results (tables, `key=value` lines),
so `python -m pipelines train ... >> "$GITHUB_OUTPUT"` works in a workflow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipelines import commands
from pipelines.errors import StageError
from pipelines.settings import get_settings
from pipelines.targets import TARGETS

log = logging.getLogger("pipelines")


def _stack_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--stack", required=required, help="dev, staging, prod or pr-<n>")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="local",
        help="local: this machine (default); pulumi: the Kubernetes stacks via Pulumi",
    )


def _verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="loadtest profile (default: the stack's name, `local` locally)")
    parser.add_argument("--no-loadcheck", action="store_true", help="skip the load check after the smoke test")
    parser.add_argument("--duration", type=float, help="load-check duration in seconds (profile's by default)")
    parser.add_argument("--reports", type=Path, help="load-check report folder (default reports/loadcheck/<stack>)")


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra stack config (repeatable), e.g. db.installOperator=false for a PR stack",
    )


def _gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tolerance", type=float, help="allowed relative regression of the primary metric")
    parser.add_argument(
        "--floor",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="absolute limit of a metric (repeatable); replaces the configured floors",
    )
    parser.add_argument("--allow-breaking", action="store_true", help="accept an incompatible feature schema")
    parser.add_argument("--serving-sklearn", help="scikit-learn of the serving image (default: pyproject pin)")


def _train_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--recipe", required=required, default=None if required else "house-price")
    parser.add_argument("--out", type=Path, help="artifact folder (default: artifacts/)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe parameter (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--record", type=Path, help="write a JSON record of this run to PATH")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name: str, handler: Callable[..., Any], text: str) -> argparse.ArgumentParser:
        sub = stages.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    _train_options(stage("train", commands.cmd_train, "train a recipe into a versioned artifact"), True)

    p = stage("gate", commands.cmd_gate, "compare a candidate artifact with a baseline or a stack's model")
    p.add_argument("--candidate", type=Path, required=True)
    p.add_argument("--baseline", type=Path, help="baseline artifact folder (instead of --stack)")
    _stack_options(p, required=False)
    _gate_options(p)

    p = stage("deploy", commands.cmd_deploy, "deploy an artifact to a stack")
    _stack_options(p)
    p.add_argument("--artifact", type=Path, required=True)
    p.add_argument("--image", help="serving image by digest (pulumi): <registry>/modelship@sha256:...")
    p.add_argument("--message", help="update message (default: action + PR/git sha)")
    _config_option(p)

    p = stage("smoke", commands.cmd_smoke, "smoke-test a running service")
    p.add_argument("--url", help="service URL (default: the stack's serviceUrl output)")
    _stack_options(p, required=False)
    p.add_argument("--expect-version", help="model version /model must report (default: the stack's)")

    p = stage("loadcheck", commands.cmd_loadcheck, "run the Locust SLO check against a service")
    p.add_argument("--url", help="service URL (default: the stack's serviceUrl output)")
    _stack_options(p, required=False)
    p.add_argument("--profile", help="loadtest profile (default: the stack's name, `local` locally)")
    p.add_argument("--duration", type=float, help="seconds (default: the profile's)")
    p.add_argument("--reports", type=Path, help="report folder (default reports/loadcheck/<stack or profile>)")

    p = stage("promote", commands.cmd_promote, "deploy the verified digest+artifact of one stack to another")
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--to", dest="destination", required=True)
    p.add_argument("--target", choices=TARGETS, default="local")
    p.add_argument("--verify", action="store_true", help="smoke + load-check the destination, roll back on failure")
    p.add_argument("--message")
    _verify_options(p)

    p = stage("history", commands.cmd_history, "show a stack's updates")
    _stack_options(p)
    p.add_argument("--limit", type=int)

    p = stage("rollback", commands.cmd_rollback, "return a stack to an earlier good update")
    _stack_options(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--to", dest="to_version", metavar="VERSION", help="model version to return to")
    group.add_argument("--steps", type=int, default=1, help="distinct deployments to go back (default 1)")
    p.add_argument("--message")
    p.add_argument("--no-smoke", action="store_true", help="do not smoke-test the result")

    p = stage("release", commands.cmd_release, "train, gate, deploy, smoke, load-check; roll back on failure")
    _stack_options(p)
    _train_options(p, False)
    p.add_argument("--artifact", type=Path, help="release this artifact instead of training one")
    p.add_argument("--image", help="serving image by digest (pulumi)")
    p.add_argument("--message")
    _config_option(p)
    _gate_options(p)
    _verify_options(p)

    p = stage("destroy", commands.cmd_destroy, "destroy and remove an ephemeral stack (pr-<n>)")
    _stack_options(p)
    return parser


def stage_names() -> list[str]:
    """Every stage the CLI offers (the workflow tests check that workflows only call these)."""
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the stage's log
    try:
        passed: bool = args.handler(args, get_settings())
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if passed else 1
