"""Run the service in the background for the local target: spawn uvicorn, wait for /ready, stop it.

The service outlives the CLI that started it (its own session), so the pid is kept in a file and,
before signalling it, checked to still be our uvicorn: pids get reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess  # nosec B404
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from loadtest import launch
from pipelines.errors import UpdateFailedError
from service import run

SERVICE_APP = run.APP
# Popen objects of services started by this process, kept so they are reaped, not left as zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def service_command(port: int) -> list[str]:
    return run.python_command("127.0.0.1", port)


def is_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def is_our_service(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return SERVICE_APP in cmdline


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(
    port: int,
    env: Mapping[str, str],
    log_file: Path,
    cwd: Path,
    command: Sequence[str] | None = None,
    inherit_env: bool = True,
) -> int:
    """Spawn the service in its own session; return its pid.

    `command` replaces the default uvicorn command line (the rehearsal's stand-in runs the image's CMD);
    `inherit_env=False` gives the process only ENV, as a container gets only what its pod spec says.
    """
    with log_file.open("ab") as log:
        # argv is sys.executable and constants, or a command the caller built; no shell.
        child = subprocess.Popen(  # nosec B603
            list(command) if command else service_command(port),
            env={**os.environ, **env} if inherit_env else dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[child.pid] = child
    return child.pid


def stop(pid: int, timeout_s: float) -> None:
    """SIGTERM (graceful: in-flight requests finish), then SIGKILL after timeout_s."""
    if not (is_alive(pid) and is_our_service(pid)):
        _CHILDREN.pop(pid, None)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while is_alive(pid):
            time.sleep(0.05)
    _CHILDREN.pop(pid, None)


def exit_code(pid: int) -> int | None:
    """None while `pid` runs; its exit code once it ended, -1 when an earlier run started it (no code to read)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll()
    return None if is_alive(pid) else -1


def wait_ready(url: str, pid: int, timeout_s: float, log_file: Path, path: str = "/ready") -> None:
    """Poll {url}{path} until 200 (loadtest.launch); UpdateFailedError if the process dies or time runs out."""
    try:
        launch.wait_ready(f"{url}{path}", lambda: exit_code(pid), timeout_s=timeout_s, poll_s=0.2, log_path=log_file)
    except launch.NotReadyError as exc:
        raise UpdateFailedError(str(exc)) from None
