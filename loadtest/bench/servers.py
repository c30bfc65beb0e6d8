"""Start a server as a fresh process group, time it to readiness, sample its CPU, stop it."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

READY_TIMEOUT_S = 180.0  # peers (KServe, MLServer) start in 40-90 s on a busy 2-core machine
READY_POLL_S = 0.005
STOP_TIMEOUT_S = 25.0


class ServerError(RuntimeError):
    """A server exited or never became ready; the message carries the tail of its log."""


@dataclass(frozen=True)
class ServerSpec:
    key: str
    label: str
    argv: tuple[str, ...]  # "{port}" is replaced by the chosen port
    env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str = "/health"
    log_table: str | None = None  # table the server logs predictions to (rows are counted)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its reaped children and its live descendants."""
    root = psutil.Process(pid)
    times = root.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in root.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # reaped between the listing and the read: already in the parent's children_*
        total += child_times.user + child_times.system
    return float(total)


def ready_status(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


class RunningServer:
    def __init__(self, spec: ServerSpec, port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.spec = spec
        self.port = port
        self.process = process
        self.log_path = log_path
        self.ready_s = float("nan")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, started: float, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds from `started` (taken before the process was spawned) to the first 200."""
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                raise ServerError(f"{self.spec.key} exited with {self.process.returncode}:\n{self.log_tail()}")
            if ready_status(self.port, self.spec.ready_path) == 200:
                self.ready_s = time.perf_counter() - started
                return self.ready_s
            time.sleep(READY_POLL_S)
        self.stop()
        raise ServerError(f"{self.spec.key} not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        """SIGTERM the process group we created (graceful drain), SIGKILL it if it hangs."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_server(
    spec: ServerSpec, port: int, log_dir: Path, cwd: Path, base_env: Mapping[str, str] | None = None
) -> RunningServer:
    """Spawn the server in its own session (so stop() reaches its workers) and wait for readiness."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.key}.log"
    argv = [arg.replace("{port}", str(port)) for arg in spec.argv]
    env = dict(os.environ if base_env is None else base_env) | dict(spec.env)
    with log_path.open("wb") as log_file:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    server = RunningServer(spec, port, process, log_path)
    try:
        server.wait_ready(started)
    except BaseException:
        server.stop()
        raise
    return server
