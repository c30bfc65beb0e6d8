"""Shared fixtures: a real PostgreSQL, real trained artifacts, a real uvicorn process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from model.train import train
from pipelines.devtools.embedded_pg import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parents[1]
SEED_REQUESTS = [  # the tutorial's example requests (seed "house price", subtasks 2.3 and 3.2)
    {"size": 2500, "bedrooms": 3, "age": 10},
    {"size": 1800, "bedrooms": 2, "age": 5},
    {"size": 3000, "bedrooms": 4, "age": 15},
]


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
    log_path = workdir / f"service-{port}.log"
    workdir.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", *UVICORN, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = LiveService(f"http://127.0.0.1:{port}", proc, log_path, env)
    if wait:
        wait_ready(service)
    return service


def wait_ready(service: LiveService, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise RuntimeError(f"service exited with {service.proc.returncode}:\n{service.logs()[-3000:]}")
        try:
            if httpx.get(service.url + "/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"service not ready after {timeout}s:\n{service.logs()[-3000:]}")


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
