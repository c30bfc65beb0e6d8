"""Shared fixtures: a real PostgreSQL, real trained artifacts, a real uvicorn process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loadtest.launch import launch
from loadtest.launch import wait_ready as launch_wait_ready
from model.train import train
from pipelines.devtools.embedded_pg import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parents[1]
SEED_REQUESTS = [  # the tutorial's example requests (seed "house price", subtasks 2.3 and 3.2)
    {"size": 2500, "bedrooms": 3, "age": 10},
    {"size": 1800, "bedrooms": 2, "age": 5},
    {"size": 3000, "bedrooms": 4, "age": 15},
]

# `make unit` runs what needs no service: tests that reach a PostgreSQL through these fixtures (uvicorn comes
# with live_service, the in-process client with pg_url) get the marker `needs_db` here, so nobody has to
# remember to add it. Tests that run an engine themselves (promtool, act, wrk, an update through the stand-in
# Pulumi CLI) carry `needs_engine` where they are written. Tests starting a PostgreSQL of their own are `slow`.
DB_FIXTURES = frozenset({"pg_server", "pg_url", "restartable_pg", "live_service"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_db: uses a real PostgreSQL (set from the fixtures it asks for)")
    config.addinivalue_line("markers", "needs_engine: runs an engine: promtool, act, wrk, a stand-in Pulumi update")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_db)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg-shared"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def restartable_pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, which it may stop (crash) and start again."""
    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    yield server
    server.stop("immediate")


@pytest.fixture(scope="session")
def pg_url(pg_server: EmbeddedPostgres) -> str:
    """A real PostgreSQL: DATABASE_URL when set, else an embedded PostgreSQL 16 for the session."""
    return os.environ.get("DATABASE_URL") or pg_server.url


@pytest.fixture
def fresh_db(pg_url: str) -> Iterator[str]:
    """An empty database of this test's own on the session's Postgres: the log holds only what the test sends."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def house_artifact(artifacts_dir: Path) -> Path:
    return train("house-price", artifacts_dir).path


@pytest.fixture(scope="session")
def iris_artifact(artifacts_dir: Path) -> Path:
    return train("iris", artifacts_dir, overrides={"n_estimators": 30}).path


@dataclass
class LiveService:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_service(
    artifact: Path, database_url: str, workdir: Path, port: int | None = None, wait: bool = True, **settings: str
) -> LiveService:
    """Start the service exactly as the Dockerfile's CMD does, on 127.0.0.1."""
    from service.run import UVICORN

    port = port or free_port()
    env = dict(os.environ)
    env.update(
        MODELSHIP_MODEL_DIR=str(artifact),
        DATABASE_URL=database_url,
        MODELSHIP_DATA_DIR=str(workdir),
        MODELSHIP_SPOOL_DIR=str(workdir / "spool"),
        **{f"MODELSHIP_{k.upper()}": str(v) for k, v in settings.items()},
    )
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", *UVICORN, "--host", "127.0.0.1", "--port", str(port)]
    launched = launch(argv, url + "/ready", workdir / f"service-{port}.log", cwd=ROOT, env=env, timeout_s=None)
    service = LiveService(url, launched.process, launched.log_path, env)
    if wait:
        wait_ready(service)
    return service


def wait_ready(service: LiveService, timeout: float = 30) -> None:
    """Until /ready answers 200; NotReadyError (with the log's tail) if the service exits or times out."""
    launch_wait_ready(service.url + "/ready", service.proc.poll, timeout_s=timeout, log_path=service.log_path)


@pytest.fixture
def live_service(pg_url: str, house_artifact: Path, tmp_path: Path) -> Iterator[Callable[..., LiveService]]:
    """A factory: live_service(artifact=None, **settings) starts a real uvicorn; all are stopped after."""
    started: list[LiveService] = []

    def factory(artifact: Path | None = None, database_url: str | None = None, **settings: str) -> LiveService:
        service = start_service(
            artifact or house_artifact, database_url or pg_url, tmp_path / f"svc{len(started)}", **settings
        )
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop()
