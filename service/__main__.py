"""CLI: python -m service up | serve | migrate | db-stop."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from model.artifact import ArtifactError, verify_artifact
from service.run import UVICORN, python_command

__all__ = ["UVICORN", "latest_artifact", "main"]  # UVICORN: the run command's home is service.run


def latest_artifact(artifacts: Path, recipe: str) -> Path | None:
    """The newest intact artifact of `recipe` under `artifacts`, by its manifest's created_at."""
    found = []
    for folder in artifacts.glob(f"{recipe}-*"):
        try:
            found.append((verify_artifact(folder)["created_at"], folder))
        except ArtifactError:
            continue
    return max(found)[1] if found else None


def _up(args: argparse.Namespace) -> int:
    from model.train import train
    from service.embedded_pg import EmbeddedPostgres

    artifact = args.model or latest_artifact(args.artifacts, args.recipe)
    if artifact is None:
        print(f"no {args.recipe} artifact in {args.artifacts}/: training one", file=sys.stderr)
        artifact = train(args.recipe, args.artifacts).path
    env = dict(os.environ, MODELSHIP_MODEL_DIR=str(Path(artifact).absolute()))
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"] = EmbeddedPostgres(Path(env.get("MODELSHIP_DATA_DIR", ".modelship")) / "pg").start()
        print("embedded PostgreSQL is up (stop it with `make down`)", file=sys.stderr)
    print(f"serving {artifact.name} on http://{args.host}:{args.port}  (docs: /docs)", file=sys.stderr)
    command = python_command(args.host, args.port)
    os.execve(sys.executable, command, env)  # noqa: S606 - replace this process: signals reach uvicorn directly


def _migrate(args: argparse.Namespace) -> int:
    import psycopg

    from service import db
    from service.embedded_pg import EmbeddedPostgres

    url = os.environ.get("DATABASE_URL") or EmbeddedPostgres(args.data_dir / "pg").start()

    async def run() -> list[str]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await db.migrate(conn)

    applied = asyncio.run(run())
    print(json.dumps({"applied": applied}))
    return 0


def _db_stop(args: argparse.Namespace) -> int:
    from service.embedded_pg import EmbeddedPostgres

    EmbeddedPostgres(args.data_dir / "pg").stop()
    print("embedded PostgreSQL stopped", file=sys.stderr)
    return 0


def _retention(args: argparse.Namespace) -> int:
    from service.embedded_pg import EmbeddedPostgres
    from service.retention import purge

    url = os.environ.get("DATABASE_URL") or EmbeddedPostgres(args.data_dir / "pg").start()
    result = purge(url, args.older_than_days, batch=args.batch, pause_s=args.pause)
    print(json.dumps(result.as_dict()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="train the default model if needed, start embedded Postgres, serve")
    up.add_argument("--recipe", default="house-price")
    up.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    up.add_argument("--model", type=Path, default=None, help="serve this artifact folder instead of the newest")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    data_dir = Path(os.environ.get("MODELSHIP_DATA_DIR", ".modelship"))
    for name, text in (("migrate", "apply database migrations"), ("db-stop", "stop the embedded PostgreSQL")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--data-dir", type=Path, default=data_dir)
    retention = commands.add_parser("retention", help="delete predictions older than N days, in small batches")
    retention.add_argument("--older-than-days", type=float, default=90)
    retention.add_argument("--batch", type=int, default=5000)
    retention.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    retention.add_argument("--data-dir", type=Path, default=data_dir)
    args = parser.parse_args(argv)
    handlers = {"up": _up, "migrate": _migrate, "db-stop": _db_stop, "retention": _retention}
    from service.embedded_pg import EmbeddedPostgresError

    try:
        return handlers[args.command](args)
    except EmbeddedPostgresError as exc:  # e.g. no DATABASE_URL in the image: one line, not a traceback
        print(f"modelship: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
