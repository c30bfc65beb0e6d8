"""The command line: parse, call one stage, print its outcome, write its record, exit 0, 1 or 2.

Progress goes to stderr through logging; stdout carries only results (tables, `key=value` lines),
so `python -m pipelines train ... >> "$GITHUB_OUTPUT"` works in a workflow.

Each stage module declares its own command (`STAGE = commands.Stage(...)`, next to its code). Exit codes:
0 the stage passed, 1 it ran and failed (a gate verdict, a failed update), 2 it was asked for something it
cannot do (a bad flag, an unknown recipe, stack, path or version): one line on stderr says what and how to fix it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from model.cliargs import USAGE_ERROR, OneLineParser

if TYPE_CHECKING:
    from pipelines.commands import Stage

log = logging.getLogger("pipelines")

# Every stage by name (its module is pipelines.<name>) with the line `--help` shows. `python -m pipelines --help`
# reads only this table, so it answers without importing scikit-learn, Pulumi and httpx (about 4 s); a stage's
# module is imported when that stage is asked for. tests/pipelines/test_cli.py checks it against each STAGE.
STAGES: dict[str, str] = {
    "canary": "run a candidate as a canary, promote or abort it (canary abort: now)",
    "deploy": "deploy an artifact to a stack",
    "destroy": "destroy and remove an ephemeral stack (pr-<n>)",
    "drift": "compare a model's live traffic with its training data",
    "gate": "compare a candidate artifact with a baseline or a stack's model",
    "history": "show a stack's updates",
    "loadcheck": "run the Locust SLO check against a service",
    "promote": "deploy the verified digest+artifact of one stack to another",
    "quality": "live metrics from labelled predictions beside held-out",
    "release": "train, gate, deploy, smoke, load-check; roll back on failure",
    "rollback": "return a stack to an earlier good update",
    "shadow": "run a challenger beside a stack's model: start, report, stop",
    "smoke": "smoke-test a running service",
    "status": "show what a stack runs now: stable, canary, shadow, last update",
    "train": "train a recipe into a versioned artifact",
}


def load_stage(name: str) -> Stage:
    """The `STAGE` that pipelines.<name> declares (imports the stage's module and what it needs)."""
    stage: Stage = importlib.import_module(f"pipelines.{name}").STAGE
    return stage


def stages() -> list[Stage]:
    """Every stage, by name (imports every stage module)."""
    return [load_stage(name) for name in sorted(STAGES)]


def build_parser(only: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with `only`, the arguments of just those stages (the others are listed by name)."""
    parser = OneLineParser(prog="python -m pipelines", description=__doc__)
    common = OneLineParser(add_help=False)
    common.add_argument("--record", type=Path, help="write a JSON record of this run to PATH")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    wanted = set(STAGES if only is None else only)
    for name, text in sorted(STAGES.items()):
        sub = subparsers.add_parser(name, parents=[common], help=text, description=text)
        if name in wanted:
            stage = load_stage(name)
            stage.add_arguments(sub)
            sub.set_defaults(handler=stage.run)
    return parser


def stage_names() -> list[str]:
    """Every stage the CLI offers (the workflow tests check that workflows only call these)."""
    return sorted(STAGES)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the stage named first is imported: `--help` and a typo cost no scikit-learn.
    args = build_parser(only=argv[:1]).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the stage's log
    from pipelines.errors import ConfigError, StageError
    from pipelines.settings import get_settings

    try:
        passed: bool = args.handler(args, get_settings())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if passed else 1
