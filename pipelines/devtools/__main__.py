"""`python -m pipelines.devtools up | db-stop`: the dev server (`make up`) and its embedded PostgreSQL."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from loadtest.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from model.artifact import ArtifactError, verify_artifact
from service.run import python_command


def latest_artifact(artifacts: Path, recipe: str) -> Path | None:
    """The newest intact artifact of `recipe` under `artifacts`, by its manifest's created_at."""
    found = []
    for folder in artifacts.glob(f"{recipe}-*"):
        try:
            found.append((verify_artifact(folder).created_at, folder))
        except ArtifactError:
            continue
    return max(found)[1] if found else None


def _up(args: argparse.Namespace) -> int:
    from model.train import train

    artifact = args.model or latest_artifact(args.artifacts, args.recipe)
    if artifact is None:
        print(f"no {args.recipe} artifact in {args.artifacts}/: training one", file=sys.stderr)
        artifact = train(args.recipe, args.artifacts).path
    env = dict(os.environ, MODELSHIP_MODEL_DIR=str(Path(artifact).absolute()))
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"] = EmbeddedPostgres(args.data_dir / "pg").start()
        print("embedded PostgreSQL is up (stop it with `make down`)", file=sys.stderr)
    print(f"serving {artifact.name} on http://{args.host}:{args.port}  (docs: /docs)", file=sys.stderr)
    command = python_command(args.host, args.port)
    os.execve(sys.executable, command, env)  # noqa: S606 - replace this process: signals reach uvicorn directly


def _db_stop(args: argparse.Namespace) -> int:
    EmbeddedPostgres(args.data_dir / "pg").stop()
    print("embedded PostgreSQL stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.devtools", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data_dir = Path(os.environ.get("MODELSHIP_DATA_DIR", ".modelship"))
    up = commands.add_parser("up", help="train the default model if needed, start embedded Postgres, serve")
    up.add_argument("--recipe", default="house-price")
    up.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    up.add_argument("--model", type=Path, default=None, help="serve this artifact folder instead of the newest")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    stop = commands.add_parser("db-stop", help="stop the embedded PostgreSQL")
    for sub in (up, stop):
        sub.add_argument("--data-dir", type=Path, default=data_dir)
    args = parser.parse_args(argv)
    try:
        return {"up": _up, "db-stop": _db_stop}[args.command](args)
    except EmbeddedPostgresError as exc:  # e.g. no pgserver wheel: one line, not a traceback
        print(f"modelship: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
