"""`make up` and `make down` (pipelines.devtools) for real: a uvicorn on a free port, then stopped by `down`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess  # nosec B404
import sys
import time
from pathlib import Path

import httpx

from pipelines.devtools import devserver
from pipelines.devtools.embedded_pg import free_port

ROOT = Path(__file__).resolve().parents[2]


def _devtools(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipelines.devtools", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_up_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = dict(os.environ, MODELSHIP_DATA_DIR=str(tmp_path))
        done = _devtools("up", "--port", str(port), env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is taken by another program; choose another: `make up PORT=8001`"
    )


def test_down_stops_the_service_up_started(tmp_path: Path, iris_artifact: Path, pg_url: str) -> None:
    port = free_port()
    env = dict(os.environ, MODELSHIP_DATA_DIR=str(tmp_path), DATABASE_URL=pg_url)
    command = [sys.executable, "-m", "pipelines.devtools", "up", "--model", str(iris_artifact), "--port", str(port)]
    up = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        server = devserver.recorded(tmp_path)
        assert server is not None and server.pid == up.pid and server.port == port
        again = _devtools("up", "--model", str(iris_artifact), "--port", str(port), env=env)
        assert again.returncode == 2 and "`make down`" in again.stderr and len(again.stderr.splitlines()) == 1
        down = _devtools("down", env=env)
        assert down.returncode == 0, down.stderr
        # SIGTERM, not SIGKILL: uvicorn drains and re-raises the signal it got once the log is flushed
        assert up.wait(timeout=30) in (0, -signal.SIGTERM)
        assert not devserver.port_taken("127.0.0.1", port)
        assert devserver.recorded(tmp_path) is None
    finally:
        up.kill()
        up.wait()


def test_a_stale_record_names_no_process(tmp_path: Path) -> None:
    devserver.record(tmp_path, devserver.Server(os.getpid(), "127.0.0.1", 1))  # this pytest is not the app
    assert devserver.recorded(tmp_path) is None
    assert not (tmp_path / devserver.PID_FILE).exists()
