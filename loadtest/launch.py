"""Start a server as a process of its own and wait until its readiness route answers 200.

The one way every live server here is started and awaited: the bench's servers and probes
(loadtest/bench/), the tests' fixtures (tests/conftest.py) and the local target
(pipelines/targets/local_process.py, which waits on a pid it started in an earlier run).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess  # nosec B404: argv comes from the caller, never a shell
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

READY_POLL_S = 0.05
STOP_TIMEOUT_S = 25.0
LOG_TAIL_CHARS = 3000


class NotReadyError(RuntimeError):
    """The process exited, or its readiness route did not answer 200 in time; the message has its log's tail."""


def ready_status(url: str, timeout_s: float = 1.0) -> int | None:
    """The status of GET `url` (http only), or None when nothing answers."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout_s)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def log_tail(log_path: Path | None, chars: int = LOG_TAIL_CHARS) -> str:
    if log_path is None or not log_path.exists():
        return "(no log)"
    return log_path.read_text(errors="replace")[-chars:]


def wait_ready(
    url: str,
    exit_code: Callable[[], int | None],
    *,
    timeout_s: float,
    started: float | None = None,
    poll_s: float = READY_POLL_S,
    log_path: Path | None = None,
    name: str = "the service",
) -> float:
    """Poll GET `url` until it answers 200; return the seconds since `started` (a perf_counter, default now).

    `exit_code()` is polled too (Popen.poll, or a pid check): a process that exited fails at once
    instead of after the whole timeout. Raises NotReadyError with the tail of `log_path`.
    """
    started = time.perf_counter() if started is None else started
    while time.perf_counter() - started < timeout_s:
        code = exit_code()
        if code is not None:
            raise NotReadyError(f"{name} exited during startup (code {code}):\n{log_tail(log_path)}")
        if ready_status(url) == 200:
            return time.perf_counter() - started
        time.sleep(poll_s)
    raise NotReadyError(f"{name} was not ready after {timeout_s:.0f} s:\n{log_tail(log_path)}")


@dataclass
class Launched:
    """A server process started by `launch`, in a session of its own so `stop` reaches its workers too."""

    process: subprocess.Popen[bytes]
    ready_url: str
    log_path: Path
    name: str
    started: float  # perf_counter taken just before the spawn
    ready_s: float = float("nan")

    def wait_ready(self, timeout_s: float, poll_s: float = READY_POLL_S) -> float:
        """Seconds from the spawn to the first 200 of the readiness route; stops the process on failure."""
        try:
            self.ready_s = wait_ready(self.ready_url, self.process.poll, timeout_s=timeout_s, started=self.started,
                                      poll_s=poll_s, log_path=self.log_path, name=self.name)  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self.ready_s

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the process group (a graceful drain), SIGKILL it if it is still there after `timeout_s`."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def launch(
    argv: Sequence[str],
    ready_url: str,
    log_path: Path,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float | None,
    poll_s: float = READY_POLL_S,
    name: str = "the service",
) -> Launched:
    """Spawn `argv` with its output appended to `log_path`, then wait for `ready_url` (unless `timeout_s` is None).

    Args:
        argv: the command; no shell.
        ready_url: the readiness route, e.g. http://127.0.0.1:8000/ready.
        log_path: stdout and stderr of the process, appended.
        cwd: its working folder.
        env: its whole environment.
        timeout_s: how long readiness may take; None returns at once (call `Launched.wait_ready` later).
        poll_s: the polling interval, small where the time to ready is the figure measured.
        name: how errors name the server.

    Raises:
        NotReadyError: the process exited or was not ready in time (it is stopped first).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        started = time.perf_counter()
        process = subprocess.Popen(  # nosec B603
            list(argv), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
    launched = Launched(process, ready_url, log_path, name, started)
    if timeout_s is not None:
        launched.wait_ready(timeout_s, poll_s)
    return launched
