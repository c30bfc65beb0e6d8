"""The command line: parse, call one stage, print its outcome, write its record, exit 0 or 1.

Progress goes to stderr through logging; stdout carries only results (tables, `key=value` lines),
so `python -m pipelines train ... >> "$GITHUB_OUTPUT"` works in a workflow.

Each stage module declares its own command (`STAGE = commands.Stage(...)`, next to its code); this module
only collects them, so adding a stage is adding a module.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

import pipelines
from pipelines.commands import Stage
from pipelines.errors import StageError
from pipelines.settings import get_settings

log = logging.getLogger("pipelines")


def stages() -> list[Stage]:
    """Every `STAGE` a module of this package declares, by name: adding a stage is adding a module."""
    found = []
    for module in pkgutil.iter_modules(pipelines.__path__):
        if module.name.startswith("_") or module.ispkg:  # __main__ would run the CLI on import
            continue
        stage = getattr(importlib.import_module(f"pipelines.{module.name}"), "STAGE", None)
        if isinstance(stage, Stage):
            found.append(stage)
    return sorted(found, key=lambda s: s.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--record", type=Path, help="write a JSON record of this run to PATH")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage in stages():
        sub = subparsers.add_parser(stage.name, parents=[common], help=stage.help, description=stage.help)
        stage.add_arguments(sub)
        sub.set_defaults(handler=stage.run)
    return parser


def stage_names() -> list[str]:
    """Every stage the CLI offers (the workflow tests check that workflows only call these)."""
    return [stage.name for stage in stages()]


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
