"""The serving image, built once per session on a real Docker engine and run as users run it.

Docker Hub is unreachable on these machines, so the base images are local stand-ins (tests/container/
standins.sh), tagged modelship-standin/*; the session says so in its output. The Dockerfile's default base
stays the real, digest-pinned python image.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from infra.components.image import label_args
from model.train import train

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTHON_STANDIN = "modelship-standin/python:3.11-slim-bookworm"
DEBIAN_STANDIN = "modelship-standin/debian:bookworm-minbase"
POSTGRES_STANDIN = "modelship-standin/postgres:15-bookworm"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUN_ID = f"modelship-test-{uuid.uuid4().hex[:6]}"
PG_PASSWORD = "container-test"  # a throwaway database of the test session


def docker_cli() -> str:
    """A client that does BuildKit: a newer CLI without the buildx plugin refuses, Debian's 20.10 does it."""
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
    return "docker" if buildx.returncode == 0 else "/usr/bin/docker"


DOCKER = docker_cli()


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def say(config: pytest.Config, line: str) -> None:
    """A line in the session's output even under output capture (stand-ins must be visible as such)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(f"[container] {line}")


@dataclass
class Image:
    tag: str
    manifest: dict[str, object]
    build_args: dict[str, str]
    seconds: float


@dataclass
class Build:
    """A build context in a temporary folder: the repo files the Dockerfile copies, plus one artifact."""

    context: Path
    artifact: str  # context-relative MODEL_DIR
    extra: list[str] = field(default_factory=list)

    def args(self) -> dict[str, str]:
        manifest = json.loads((self.context / self.artifact / "manifest.json").read_text())
        revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        return {
            "MODEL_DIR": self.artifact,
            "MODEL_VERSION": manifest["version"],
            "GIT_REVISION": revision.stdout.strip(),
            **label_args(str(self.context / self.artifact), revision.stdout.strip()),
            "PYTHON_IMAGE": PYTHON_STANDIN,
        }

    def build(self, tag: str, **overrides: str) -> tuple[subprocess.CompletedProcess[str], float]:
        argv = ["build", "-t", tag]
        for key, value in {**self.args(), **overrides}.items():
            argv += ["--build-arg", f"{key}={value}"]
        if CA_BUNDLE.is_file():  # the machine's pip trusts its TLS-intercepting proxy through this bundle
            argv += ["--secret", f"id=ca_bundle,src={CA_BUNDLE}"]
        began = time.monotonic()
        os.environ["DOCKER_BUILDKIT"] = "1"
        done = docker(*argv, *self.extra, str(self.context), check=False, timeout=1200)
        return done, time.monotonic() - began


def make_context(dest: Path, artifact: Path) -> Build:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, dest / name)
    for package in ("model", "service"):
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(artifact, dest / "artifacts" / artifact.name)
    return Build(dest, f"artifacts/{artifact.name}")


@pytest.fixture(scope="session")
def engine(pytestconfig: pytest.Config) -> str:
    subprocess.run(["bash", str(HERE / "engine.sh")], check=True)
    began = time.monotonic()
    subprocess.run(["bash", str(HERE / "standins.sh")], check=True, env={**os.environ, "DOCKER": DOCKER})
    say(pytestconfig, f"base images are LOCAL STAND-INS (Docker Hub is unreachable here): {PYTHON_STANDIN}, "
        f"{POSTGRES_STANDIN} ({time.monotonic() - began:.0f} s; built once per machine)")  # fmt: skip
    return DOCKER


@pytest.fixture(scope="session")
def house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train("house-price", tmp_path_factory.mktemp("container-artifacts")).path


@pytest.fixture(scope="session")
def context(house: Path, tmp_path_factory: pytest.TempPathFactory) -> Build:
    return make_context(tmp_path_factory.mktemp("context"), house)


@pytest.fixture(scope="session")
def image(engine: str, context: Build, pytestconfig: pytest.Config) -> Iterator[Image]:
    """The serving image of the session's house-price artifact, on the stand-in python base."""
    tag = f"{RUN_ID}:house"
    done, seconds = context.build(tag)
    assert done.returncode == 0, done.stdout + done.stderr
    size = int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)
    say(pytestconfig, f"built {tag} in {seconds:.1f} s, {size / 1e6:.0f} MB (base: {PYTHON_STANDIN}, a stand-in)")
    manifest = json.loads((context.context / context.artifact / "manifest.json").read_text())
    yield Image(tag, manifest, context.args(), seconds)
    docker("image", "rm", "-f", tag, check=False)


@pytest.fixture(scope="session")
def network(engine: str) -> Iterator[str]:
    docker("network", "create", RUN_ID)
    yield RUN_ID
    docker("network", "rm", RUN_ID, check=False)


@dataclass
class Postgres:
    container: str
    inside_url: str  # from containers on the session network
    host_url: str  # from the tests


@pytest.fixture(scope="session")
def postgres(network: str) -> Iterator[Postgres]:
    """The stand-in postgres image, driven through the official image's env contract."""
    name = f"{RUN_ID}-pg"
    docker("run", "-d", "--name", name, "--network", network, "-p", "127.0.0.1::5432",
           "-e", "POSTGRES_USER=modelship", "-e", f"POSTGRES_PASSWORD={PG_PASSWORD}", "-e", "POSTGRES_DB=modelship",
           POSTGRES_STANDIN)  # fmt: skip
    port = docker("port", name, "5432/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
    pg = Postgres(
        name,
        f"postgresql://modelship:{PG_PASSWORD}@{name}:5432/modelship",
        f"postgresql://modelship:{PG_PASSWORD}@127.0.0.1:{port}/modelship",
    )
    ready = ["exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "modelship", "-d", "modelship"]
    assert wait_for(lambda: docker(*ready, check=False).returncode == 0, 120), docker("logs", name).stderr
    yield pg
    docker("rm", "-f", "-v", name, check=False)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Running:
    name: str
    url: str

    def logs(self) -> str:
        done = docker("logs", self.name, check=False)
        return done.stdout + done.stderr

    def state(self, field_path: str) -> str:
        return docker("inspect", "-f", "{{" + field_path + "}}", self.name).stdout.strip()

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


# What a read-only run needs (README "Container"): a writable spool volume, /tmp as tmpfs.
HARDENED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true", "--tmpfs", "/tmp"]


@pytest.fixture
def run_service(network: str, postgres: Postgres) -> Iterator[Callable[..., Running]]:
    started: list[str] = []

    def start(image: str, *extra: str, database: bool = True, env: dict[str, str] | None = None) -> Running:
        name = f"{RUN_ID}-svc-{uuid.uuid4().hex[:6]}"
        port = free_port()
        argv = ["run", "-d", "--name", name, "--network", network, "-p", f"127.0.0.1:{port}:8000", *HARDENED,
                "-v", f"{name}-spool:/var/spool/modelship", "--health-interval", "2s"]  # fmt: skip
        for key, value in {**({"DATABASE_URL": postgres.inside_url} if database else {}), **(env or {})}.items():
            argv += ["-e", f"{key}={value}"]
        docker(*argv, *extra, image)
        started.append(name)
        return Running(name, f"http://127.0.0.1:{port}")

    yield start
    for name in started:
        docker("rm", "-f", "-v", name, check=False)
        docker("volume", "rm", f"{name}-spool", check=False)
