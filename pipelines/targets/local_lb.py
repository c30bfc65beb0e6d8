"""The local target's Service: a real HAProxy (Debian's 2.6) in front of a stack's service processes.

It plays kube-proxy: it listens on the stack's port and spreads *connections* (mode tcp, as kube-proxy does)
over one server per ready process of every "Deployment" the Service selects, each health-checked on /ready.
A server's weight stands for the pods its Deployment has (docs/local-development.md, "HAProxy"): one process per
Deployment keeps two cores free, and a split by weights is what ready pods give a Service.

The set of servers changes by a seamless reload (`-x` takes the listening socket over from the running
process, `-sf` lets that one finish its connections); a server leaves by `set server ... state drain`
through the runtime API first, so no connection is cut.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess  # nosec B404
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import UpdateFailedError

BACKEND = "service"
HAPROXY = "haproxy"
READY_PATH = "/ready"
CHECK_INTERVAL_MS = 500
INSTALL_HINT = "install Debian's haproxy (`make haproxy`, or apt-get install haproxy)"


@dataclass(frozen=True)
class Server:
    name: str  # "<track>-<port>", e.g. stable-40123
    port: int
    weight: int  # the pods it stands for, 0..256; 0 takes no new connections


class LoadBalancer:
    """HAProxy for one stack: its config, pid file and admin socket live in the stack's folder."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.config = root / "haproxy.cfg"
        self.pid_file = root / "haproxy.pid"
        self.socket = root / "haproxy.sock"

    # -- lifecycle ------------------------------------------------------------------------------
    def apply(self, servers: Sequence[Server]) -> None:
        """Serve SERVERS: start HAProxy, or reload it seamlessly when it runs."""
        binary = shutil.which(HAPROXY) or shutil.which(f"/usr/sbin/{HAPROXY}")
        if binary is None:
            raise UpdateFailedError(f"the local target needs HAProxy as its Service: {INSTALL_HINT}")
        self.config.write_text(render(self.port, self.socket, servers))
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.config)], capture_output=True, text=True)  # nosec B603
        if check.returncode != 0:
            raise UpdateFailedError(f"haproxy refused {self.config}: {check.stderr.strip() or check.stdout.strip()}")
        argv = [binary, "-D", "-f", str(self.config), "-p", str(self.pid_file)]
        old = self.pid()
        if old is not None:
            argv += ["-x", str(self.socket), "-sf", str(old)]
        started = subprocess.run(argv, capture_output=True, text=True, start_new_session=True)  # nosec B603
        if started.returncode != 0:
            raise UpdateFailedError(f"haproxy did not start on :{self.port}: {started.stderr.strip()}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)  # soft stop: finish the open connections, then exit
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def pid(self) -> int | None:
        """The running HAProxy of this stack (its command line names this stack's config), else None."""
        if not self.pid_file.exists():
            return None
        text = self.pid_file.read_text().split()
        pid = int(text[0]) if text else 0
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        return pid if str(self.config) in cmdline and _alive(pid) else None

    # -- the runtime API --------------------------------------------------------------------------
    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """`show stat` of the backend's servers: {name: {status, scur, weight, ...}}."""
        lines = self.command("show stat").splitlines()
        if not lines:
            return {}
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows if r.get("pxname") == BACKEND and r["svname"] not in ("BACKEND",)}

    def drain(self, names: Sequence[str], timeout_s: float) -> None:
        """No new connections to NAMES; return once their open connections are done (or at the timeout)."""
        for name in names:
            self.command(f"set server {BACKEND}/{name} state drain")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.stats()
            if all(stats.get(n, {}).get("scur", "0") in ("0", "") for n in names):
                return
            time.sleep(0.1)

    def wait_up(self, names: Sequence[str], timeout_s: float) -> None:
        """Until HAProxy's own checks of /ready report every server in NAMES as UP."""
        deadline = time.monotonic() + timeout_s
        stats: dict[str, dict[str, str]] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                stats = self.stats()
                if all(stats.get(n, {}).get("status", "").startswith("UP") for n in names):
                    return
            time.sleep(0.1)
        states = {n: stats.get(n, {}).get("status", "?") for n in names}
        raise UpdateFailedError(f"haproxy's checks of {READY_PATH} did not pass within {timeout_s:.0f}s: {states}")


def render(port: int, admin_socket: Path, servers: Sequence[Server]) -> str:
    """The whole config: one listener on PORT, one backend, a server per process, checks on /ready."""
    lines = [
        "# Written by pipelines/targets/local_lb.py for this stack; rewritten on every update.",
        "global",
        f"    stats socket {admin_socket} mode 600 level admin expose-fd listeners",
        "    log stderr format raw local0 warning",
        "defaults",
        "    mode tcp",  # kube-proxy balances connections, not requests (docs/local-development.md)
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    retries 2",
        "    option redispatch",  # a connection refused by a dying process is retried on another server
        f"frontend {BACKEND}-in",
        f"    bind 127.0.0.1:{port}",
        f"    default_backend {BACKEND}",
        f"backend {BACKEND}",
        "    balance roundrobin",  # smooth weighted round robin: weights are pod counts
        f"    option httpchk GET {READY_PATH}",
        "    http-check expect status 200",
        f"    default-server check inter {CHECK_INTERVAL_MS} fall 2 rise 1",
    ]
    lines += [f"    server {s.name} 127.0.0.1:{s.port} weight {s.weight}" for s in servers]
    return "\n".join(lines) + "\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")
