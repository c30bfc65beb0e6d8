"""A real PostgreSQL 16 for laptops, tests and the local pipeline target.

It runs the server binaries shipped in the `pgserver` wheel (or Debian's, when that wheel is absent),
listening on 127.0.0.1 only, with its data in a folder that survives restarts. Unlike
`pgserver.get_server`, it listens on TCP and can be stopped and started on demand, which the
fault drills need. As root it runs the server as the unprivileged `pgserver` user, as PostgreSQL
refuses to run as root.

It is a dev tool, so it lives with the others in pipelines/devtools/. The bench (loadtest/bench) starts one
too: tests/test_layers.py places pipelines.devtools below loadtest for that (this module imports only the
standard library), and the serving image copies neither.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
import warnings
from pathlib import Path

SYSTEM_USER = "pgserver"
# One line, as the serving image prints it and exits: there is no PostgreSQL in it to embed.
NO_DATABASE = (
    "DATABASE_URL is required here: there is no PostgreSQL to start an embedded one (the serving image has none). "
    "Set it, e.g. docker run -e DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME; on a laptop `make venv` "
    "installs pgserver for the embedded one"
)


class EmbeddedPostgresError(RuntimeError):
    pass


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():  # pgserver's platformdirs warns about XDG_RUNTIME_DIR as root
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)
    except ImportError:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not candidates:
            raise EmbeddedPostgresError(NO_DATABASE) from None
        return candidates[-1]


def available() -> bool:
    """Whether an embedded PostgreSQL can start here: never in the serving image, which has no binaries."""
    try:
        _bin_dir()
    except EmbeddedPostgresError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.pgdata = self.data_dir / "data"
        self.log_file = self.data_dir / "postgres.log"
        self.requested_port = port
        self.bin = _bin_dir()
        self._user = SYSTEM_USER if os.geteuid() == 0 else None

    # -- public -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        pid_file = self.pgdata / "postmaster.pid"
        lines = pid_file.read_text().splitlines() if pid_file.exists() else []
        if len(lines) < 4:
            raise EmbeddedPostgresError(f"PostgreSQL in {self.pgdata} is not running")
        return int(lines[3])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        result = self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False)
        return result.returncode == 0

    def start(self) -> str:
        """Start (or reuse) the server; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            if self._user:
                self._allow_traversal()  # pytest resets its tmp root to 0700 at every session start
            if not self.is_running():
                port = self._choose_port()
                options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
                self._run(
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                )
            return self.url

    def stop(self, mode: str = "fast") -> None:
        """Stop the server. mode="immediate" is a crash: no checkpoint, like a SIGKILL."""
        if self._user and self.pgdata.exists():
            # As in start(): another pytest session may have reset its tmp root to 0700 since, and pg_ctl
            # (run as the server's user) would then find no server and leave it running.
            self._allow_traversal()
        if self.is_running():
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.pgdata), "-m", mode)

    # -- internals --------------------------------------------------------------------------
    def _lock(self) -> _FileLock:
        return _FileLock(self.data_dir / ".lock")

    def _choose_port(self) -> int:
        # Keep the first port across restarts so a URL handed out earlier stays valid.
        saved = self.data_dir / "port"
        port = self.requested_port or (int(saved.read_text()) if saved.exists() else free_port())
        saved.write_text(str(port))
        return port

    def _initdb(self) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-initialised folder from an interrupted initdb
        self.pgdata.mkdir(mode=0o700)
        if self._user:
            self._grant(self.pgdata)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        )

    def _grant(self, path: Path) -> None:
        """Let the unprivileged server user own PGDATA and traverse every parent folder."""
        assert self._user is not None
        _ensure_user(self._user)
        entry = pwd.getpwnam(self._user)
        for folder in (path, self.data_dir):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self._allow_traversal()
        if not self.log_file.exists():
            self.log_file.touch()
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def _allow_traversal(self) -> None:
        # The server runs as the system user, so it must reach both its data folder and its binaries: a
        # virtualenv inside a private folder (a pytest tmp root, an act cache, a 0700 home) hides pg_ctl.
        traverse = stat.S_IXGRP | stat.S_IXOTH
        for parent in {*self.data_dir.parents, *self.bin.parents}:
            mode = parent.stat().st_mode
            if mode & traverse != traverse:
                parent.chmod(mode | traverse)

    def _run(self, exe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin / exe), *args],
            capture_output=True,
            text=True,
            user=self._user,
            cwd="/",
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise EmbeddedPostgresError(
                f"{exe} {' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )
        return result


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True, capture_output=True)


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def __enter__(self) -> _FileLock:
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        deadline = time.monotonic() + 120
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(f"timed out waiting for {self.path}") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
