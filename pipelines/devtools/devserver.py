"""The service `make up` runs: is its port free, which process is it, and stopping it (`make down`).

`up` replaces itself with uvicorn (execve keeps the pid), so the pid it writes before that is the server's.
`down` checks the pid is still that server (its command line names the app) before it signals anything: a
stale file after a reboot must not stop an unrelated process that got the same pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from service.run import APP, SHUTDOWN_GRACE_S

PID_FILE = "up.json"


@dataclass(frozen=True)
class Server:
    pid: int
    host: str
    port: int


def port_taken(host: str, port: int) -> bool:
    """Whether a listener holds HOST:PORT; bound the way uvicorn binds (SO_REUSEADDR), so the answers agree."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def record(data_dir: Path, server: Server) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / PID_FILE).write_text(json.dumps(server.__dict__) + "\n")


def recorded(data_dir: Path) -> Server | None:
    """The server `up` recorded, if that process still runs the app; a stale record is removed."""
    path = data_dir / PID_FILE
    try:
        server = Server(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not _runs_the_app(server.pid):
        path.unlink(missing_ok=True)
        return None
    return server


def stop(data_dir: Path, server: Server) -> None:
    """SIGTERM, as Ctrl-C would, then wait out uvicorn's grace period; SIGKILL only past it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S + 5
        while _runs_the_app(server.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _runs_the_app(server.pid):
            os.kill(server.pid, signal.SIGKILL)
    (data_dir / PID_FILE).unlink(missing_ok=True)


def _runs_the_app(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and APP.encode() in argv
