"""Which prediction log a stage reads: `--database-url`, else the one the stack's service writes to.

Shared by the stages that analyse the log (canary; drift and quality resolve the same way). Locally the stack's
embedded PostgreSQL (`<state_dir>/stacks/<stack>/pg`, running while the stack does); on pulumi the stack's
`databaseUrl` output, which names the in-cluster host: from a runner outside the cluster give `--database-url`
(e.g. through `kubectl port-forward`) instead.
"""

from __future__ import annotations

import argparse

from infra.contract import OUTPUT_DATABASE_URL
from pipelines.errors import ConfigError
from pipelines.targets import Stack


def database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="the prediction log's PostgreSQL (default: the stack's own, see docs/canary.md)"
    )


def database_url(stack: Stack, explicit: str | None = None) -> str:
    """The PostgreSQL URL of STACK's prediction log (EXPLICIT when given).

    Raises:
        ConfigError: the stack has no log to read (not running locally, no databaseUrl output).
    """
    if explicit:
        return explicit
    from pipelines.targets.local import LocalStack

    if isinstance(stack, LocalStack):
        from pipelines.devtools.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError

        try:
            return EmbeddedPostgres(stack.root / "pg").url
        except EmbeddedPostgresError:
            raise ConfigError(
                f"the PostgreSQL of local stack {stack.name} is not running; deploy the stack first"
            ) from None
    url = stack.outputs().get(OUTPUT_DATABASE_URL)
    if not url:
        raise ConfigError(f"stack {stack.name} has no {OUTPUT_DATABASE_URL} output; give --database-url")
    return str(url)
