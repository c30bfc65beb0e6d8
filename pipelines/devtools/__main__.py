"""`python -m pipelines.devtools up | down | db-stop`: the dev server (`make up`, `make down`) and its Postgres.

`make up` runs outside the pipelines' local stacks (.modelship/stacks/, ports 8101-8103): it serves the newest
artifact on 127.0.0.1:8000 with its own embedded Postgres (.modelship/pg), and `make down` stops both.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from model.cliargs import OneLineParser, fail
from model.recipes import RecipeError, get_recipe
from pipelines.devtools import devserver
from pipelines.devtools.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from service.run import python_command


def latest_artifact(artifacts: Path, recipe: str) -> Path | None:
    """The newest intact artifact of `recipe` under `artifacts`, by its manifest's created_at."""
    from model.artifact import ArtifactError, verify_artifact  # scikit-learn: seconds a busy port need not wait

    found = []
    for folder in artifacts.glob(f"{recipe}-*"):
        try:
            found.append((verify_artifact(folder).created_at, folder))
        except ArtifactError:
            continue
    return max(found)[1] if found else None


def _check_port(args: argparse.Namespace) -> None:
    """Before training or Postgres: uvicorn would only say `[Errno 98] address already in use`, 10 s later."""
    if (running := devserver.recorded(args.data_dir)) is not None and running.port == args.port:
        fail(f"error: make up is already serving on http://{running.host}:{running.port} (pid {running.pid}); stop it "
             "with `make down`, or serve another on a free port: `make up PORT=8001`")  # fmt: skip
    if devserver.port_taken(args.host, args.port):
        fail(f"error: port {args.port} on {args.host} is taken by another program; choose another: `make up PORT=8001`")


def _artifact(args: argparse.Namespace) -> Path:
    from model.artifact import ArtifactError, verify_artifact

    if args.model is not None:
        try:
            verify_artifact(args.model)
        except ArtifactError as exc:
            fail(f"error: --model {args.model}: {exc}")
        return Path(args.model)
    found = latest_artifact(args.artifacts, args.recipe)
    if found is not None:
        return found
    from model.train import train

    print(f"no {args.recipe} artifact in {args.artifacts}/: training one", file=sys.stderr)
    return train(args.recipe, args.artifacts).path


def _up(args: argparse.Namespace) -> int:
    try:
        get_recipe(args.recipe)
    except RecipeError as exc:
        fail(f"error: {exc} (`make up RECIPE=iris`)")
    _check_port(args)
    artifact = _artifact(args)
    env = dict(os.environ, MODELSHIP_MODEL_DIR=str(artifact.absolute()))
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"] = EmbeddedPostgres(args.data_dir / "pg").start()
        print("embedded PostgreSQL is up", file=sys.stderr)
    print(f"serving {artifact.name} on http://{args.host}:{args.port}  (docs: /docs; stop: make down)", file=sys.stderr)
    devserver.record(args.data_dir, devserver.Server(os.getpid(), args.host, args.port))
    command = python_command(args.host, args.port)
    os.execve(sys.executable, command, env)  # noqa: S606 - replace this process: signals reach uvicorn directly


def _down(args: argparse.Namespace) -> int:
    server = devserver.recorded(args.data_dir)
    if server is not None:
        devserver.stop(args.data_dir, server)
        print(f"service on :{server.port} stopped (pid {server.pid})", file=sys.stderr)
    return _db_stop(args)


def _db_stop(args: argparse.Namespace) -> int:
    EmbeddedPostgres(args.data_dir / "pg").stop()
    print("embedded PostgreSQL stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m pipelines.devtools", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data_dir = Path(os.environ.get("MODELSHIP_DATA_DIR", ".modelship"))
    up = commands.add_parser("up", help="train the default model if needed, start embedded Postgres, serve")
    up.add_argument("--recipe", default="house-price")
    up.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    up.add_argument("--model", type=Path, default=None, help="serve this artifact folder instead of the newest")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    down = commands.add_parser("down", help="stop the service `up` started, then its embedded PostgreSQL")
    stop = commands.add_parser("db-stop", help="stop the embedded PostgreSQL only")
    for sub in (up, down, stop):
        sub.add_argument("--data-dir", type=Path, default=data_dir)
    args = parser.parse_args(argv)
    try:
        return {"up": _up, "down": _down, "db-stop": _db_stop}[args.command](args)
    except EmbeddedPostgresError as exc:  # e.g. no pgserver wheel: one line, not a traceback
        fail(f"modelship: {exc}")


if __name__ == "__main__":
    sys.exit(main())
