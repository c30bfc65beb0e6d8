"""Which prediction log a stage reads, and how: `--stack/--target` or `--database-url`, and `--window`.

The stages that read the log back (`quality`, `drift`, `canary`, `shadow`) share these options and this
resolution: a local stack's embedded Postgres, a Pulumi stack's `databaseUrl` output (a secret whose host is
in-cluster: run the stage inside the cluster or port-forward and pass `--database-url`), or the URL given. A bad
one is a ConfigError: one line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg

from infra import contract
from pipelines import commands
from pipelines.errors import ConfigError
from pipelines.settings import PipelineSettings
from pipelines.targets import Stack, get_target
from pipelines.targets.local import LocalStack

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def database_options(parser: argparse.ArgumentParser) -> None:
    """`--stack/--target` or `--database-url`, and `--window`."""
    commands.stack_options(parser, required=False)
    parser.add_argument("--database-url", help="the prediction log's database (instead of --stack)")
    parser.add_argument("--window", type=window_arg, default="1h", help="how far back: 30m, 1h (default), 2d")


def parse_window(text: str) -> timedelta:
    """`30m`, `1h`, `2d` (also `90s`) as a duration; ValueError names the form."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match[1]) == 0:
        raise ValueError(f"--window {text!r}: give a positive whole number and a unit s, m, h or d, e.g. 30m, 1h, 2d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def window_arg(text: str) -> str:
    try:
        parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def database_url(args: argparse.Namespace, settings: PipelineSettings) -> str:
    """`--database-url`, else the prediction log of `--stack` (see the module docstring)."""
    if bool(args.database_url) == bool(args.stack):
        raise ConfigError("give --stack (with --target) or --database-url, one of them")
    if args.database_url:
        return str(args.database_url)
    return stack_database_url(get_target(args.target, settings).select(args.stack))


def stack_database_url(stack: Stack, explicit: str | None = None) -> str:
    """The prediction log of a selected STACK (EXPLICIT when given): what the canary driver reads."""
    if explicit:
        return explicit
    if isinstance(stack, LocalStack):
        return stack.database_url()
    url = stack.outputs().get(contract.OUTPUT_DATABASE_URL)
    if not url:
        raise ConfigError(
            f"stack {stack.name} has no {contract.OUTPUT_DATABASE_URL} output; deploy it or pass --database-url"
        )
    return str(url)


def database_option(parser: argparse.ArgumentParser) -> None:
    """`--database-url` alone, for stages that also take --stack (the canary)."""
    parser.add_argument("--database-url", help="the prediction log's PostgreSQL (default: the stack's own)")


def redact(url: str) -> str:
    """URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the log; ConfigError (one line, no password) when it cannot be had."""
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"--database-url {redact(url)!r} is not a postgresql://USER[:PASSWORD]@HOST[:PORT]/DB URL")
    try:
        conn = psycopg.connect(url, connect_timeout=10, autocommit=True)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to {redact(url)}: {reason}; check --database-url") from exc
    with conn:
        yield conn
