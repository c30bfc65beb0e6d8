"""Which prediction log a stage reads: `--database-url`, or the one of `--stack` on `--target`.

One resolution for every stage that analyses the log (shadow, drift, feedback's quality): a local stack's
embedded PostgreSQL (it must be running: the stack is deployed), a Pulumi stack's `databaseUrl` output (an
in-cluster address: run from inside the cluster or through a port-forward, then pass `--database-url`).
"""

from __future__ import annotations

import argparse

from infra import contract
from pipelines.errors import ConfigError
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="the prediction log's Postgres URL (default: the one of --stack on --target)"
    )


def database_url(args: argparse.Namespace, settings: PipelineSettings) -> str:
    """The URL the arguments name: `--database-url`, else the stack's."""
    if getattr(args, "database_url", None):
        return str(args.database_url)
    if not getattr(args, "stack", None):
        raise ConfigError("give --database-url, or --stack (and --target) to read that stack's prediction log")
    return stack_database_url(args.target, args.stack, settings)


def stack_database_url(target: str, stack: str, settings: PipelineSettings) -> str:
    handle = get_target(target, settings).select(stack)
    if target == "local":
        from pipelines.devtools.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError

        try:
            return EmbeddedPostgres(handle.root / "pg").url  # type: ignore[attr-defined]
        except EmbeddedPostgresError:
            raise ConfigError(f"the Postgres of local stack {stack} is not running; deploy the stack first, "
                              "or pass --database-url") from None  # fmt: skip
    url = handle.outputs().get(contract.OUTPUT_DATABASE_URL)
    if not url:
        raise ConfigError(f"stack {stack} has no {contract.OUTPUT_DATABASE_URL} output; pass --database-url")
    return str(url)
