"""The bench's servers: each started by loadtest.launch as a fresh process group, timed to readiness, CPU sampled."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadtest.launch import Launched, NotReadyError, launch

READY_TIMEOUT_S = 180.0  # peers (KServe, MLServer) start in 40-90 s on a busy 2-core machine
READY_POLL_S = 0.005  # the time to ready is a figure here (cold start): poll finely


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


class RunningServer:
    def __init__(self, spec: ServerSpec, port: int, launched: Launched) -> None:
        self.spec = spec
        self.port = port
        self.launched = launched

    @property
    def ready_s(self) -> float:
        """Seconds from the spawn to the first 200 of its readiness route."""
        return self.launched.ready_s

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.launched.process.pid)

    def stop(self) -> None:
        self.launched.stop()


def start_server(
    spec: ServerSpec, port: int, log_dir: Path, cwd: Path, base_env: Mapping[str, str] | None = None
) -> RunningServer:
    """Spawn the server in its own session (so stop() reaches its workers) and wait for readiness."""
    log_path = log_dir / f"{spec.key}.log"
    log_path.unlink(missing_ok=True)  # each start's own log: its tail explains this start's failure
    argv = [arg.replace("{port}", str(port)) for arg in spec.argv]
    env = dict(os.environ if base_env is None else base_env) | dict(spec.env)
    try:
        launched = launch(argv, f"http://127.0.0.1:{port}{spec.ready_path}", log_path, cwd=cwd, env=env,
                          timeout_s=READY_TIMEOUT_S, poll_s=READY_POLL_S, name=spec.key)  # fmt: skip
    except NotReadyError as exc:
        raise ServerError(str(exc)) from None
    return RunningServer(spec, port, launched)
