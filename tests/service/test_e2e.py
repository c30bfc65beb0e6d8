"""End to end: the Dockerfile's exact CMD under uvicorn, and `make up`'s command, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pipelines.devtools.embedded_pg import free_port
from service.run import UVICORN
from tests.conftest import ROOT, SEED_REQUESTS, LiveService, wait_ready

pytestmark = pytest.mark.slow


def dockerfile_cmd() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, "the Dockerfile needs an exec-form CMD"
    command: list[str] = json.loads(match.group(1))
    return command


def test_dockerfile_cmd_is_the_command_the_tests_run() -> None:
    command = dockerfile_cmd()
    host = command.index("--host")
    port = command.index("--port")
    assert command[port + 1] == "8000"
    stripped = [c for i, c in enumerate(command) if i not in (host, host + 1, port, port + 1)]
    assert stripped == UVICORN


def test_seed_requests_through_the_dockerfile_cmd(pg_url: str, house_artifact: Path, tmp_path: Path) -> None:
    command = dockerfile_cmd()
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    env = dict(
        os.environ,
        MODELSHIP_MODEL_DIR=str(house_artifact),
        DATABASE_URL=pg_url,
        MODELSHIP_SPOOL_DIR=str(tmp_path / "spool"),
    )
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=out, stderr=out)
    service = LiveService(f"http://127.0.0.1:{port}", proc, log, env)
    try:
        wait_ready(service)
        assert httpx.get(service.url + "/health").json() == {"status": "ok"}
        assert "POST /predict" in httpx.get(service.url + "/").json()["endpoints"]
        ids = []
        for body in SEED_REQUESTS:
            response = httpx.post(service.url + "/predict", json=body)
            assert response.status_code == 200
            assert response.json()["input"] == body
            ids.append(response.json()["request_id"])
        logged = httpx.get(service.url + "/predictions", params={"limit": 100}).json()["predictions"]
        assert set(ids) <= {row["request_id"] for row in logged}
    finally:
        service.stop()
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("msg") == "request" and line["route"] == "/predict"]
    assert {a["request_id"] for a in access} >= set(ids)
    assert all({"latency_ms", "status", "model_version"} <= set(a) for a in access)


def test_make_up_command_trains_starts_embedded_postgres_and_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["MODELSHIP_DATA_DIR"] = str(tmp_path / "data")
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines.devtools",
                "up",
                "--artifacts",
                str(tmp_path / "artifacts"),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    service = LiveService(f"http://127.0.0.1:{port}", proc, log, env)
    try:
        wait_ready(service, timeout=60)
        response = httpx.post(service.url + "/predict", json=SEED_REQUESTS[0])
        assert response.status_code == 200 and response.json()["model_version"].startswith("house-price-")
        assert any(a.name.startswith("house-price-") for a in (tmp_path / "artifacts").iterdir())
    finally:
        service.stop()
        subprocess.run([sys.executable, "-m", "pipelines.devtools", "db-stop"], cwd=ROOT, env=env, check=True)


def test_a_tampered_artifact_stops_start_up_with_a_clear_message(
    house_artifact: Path, pg_url: str, tmp_path: Path
) -> None:
    import shutil

    bad = tmp_path / house_artifact.name
    shutil.copytree(house_artifact, bad)
    with (bad / "model.joblib").open("ab") as f:
        f.write(b"tampered")
    env = dict(os.environ, MODELSHIP_MODEL_DIR=str(bad), DATABASE_URL=pg_url)
    result = subprocess.run(
        [sys.executable, "-m", *UVICORN, "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "refusing to load the model" in result.stderr and "sha256" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("damage", ["missing folder", "model file is a directory", "not allowed"])
def test_an_artifact_that_cannot_be_loaded_stops_start_up_with_one_line(
    damage: str, house_artifact: Path, pg_url: str, tmp_path: Path
) -> None:
    """Tampered, not allowed, unreadable or missing: one line naming the cause, never a traceback.

    (An unreadable file cannot be made here: the tests run as root, who reads mode 0600 anyway. A directory
    where the model file should be raises the same family of error, OSError, from the same open.)"""
    import shutil

    bad = tmp_path / house_artifact.name
    env = dict(os.environ, DATABASE_URL=pg_url, MODELSHIP_MODEL_DIR=str(bad))
    if damage != "missing folder":
        shutil.copytree(house_artifact, bad)
    if damage == "model file is a directory":
        (bad / "model.joblib").unlink()
        (bad / "model.joblib").mkdir()
    if damage == "not allowed":
        env["MODELSHIP_ALLOWED_ARTIFACT_SHA256"] = "0" * 64
    result = subprocess.run([sys.executable, "-m", *UVICORN, "--port", str(free_port())], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if "refusing to load the model" in line]
    assert len(ours) == 1 and "Traceback" not in result.stderr, result.stderr
