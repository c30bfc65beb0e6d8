"""`python -m service migrate`: apply the prediction log's migrations to DATABASE_URL.

The service is run by its one command (service/run.py); the retention job has its own entry point
(`python -m service.retention`); the dev server lives with the dev tools (`python -m pipelines.devtools up`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys


def _migrate(url: str) -> list[str]:
    import psycopg

    from service import db

    async def run() -> list[str]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await db.migrate(conn)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations to DATABASE_URL")
    parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("modelship: DATABASE_URL is required: the database to migrate", file=sys.stderr)
        return 2
    print(json.dumps({"applied": _migrate(url)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
