"""loadtest.launch: a real child process, started, awaited on its readiness route, stopped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from loadtest.launch import NotReadyError, launch
from pipelines.devtools.embedded_pg import free_port

SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ready" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()
print("serving", flush=True)
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_launch_waits_for_the_ready_route_and_stop_ends_the_process(tmp_path: Path) -> None:
    port = free_port()
    server = launch([sys.executable, "-c", SERVER, str(port)], f"http://127.0.0.1:{port}/ready", tmp_path / "s.log",
                    cwd=tmp_path, env=os.environ, timeout_s=30)  # fmt: skip
    try:
        assert server.ready_s > 0 and server.process.poll() is None
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert "serving" in (tmp_path / "s.log").read_text()


def test_a_process_that_exits_fails_at_once_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('bad config'); sys.exit(3)"]
    with pytest.raises(NotReadyError, match=r"(?s)exited during startup \(code 3\).*bad config"):
        launch(argv, f"http://127.0.0.1:{free_port()}/ready", tmp_path / "s.log", cwd=tmp_path, env=os.environ,
               timeout_s=30, name="the service")  # fmt: skip


def test_a_route_that_never_turns_ready_times_out_and_the_process_is_stopped(tmp_path: Path) -> None:
    port = free_port()
    server = launch([sys.executable, "-c", SERVER, str(port)], f"http://127.0.0.1:{port}/other", tmp_path / "s.log",
                    cwd=tmp_path, env=os.environ, timeout_s=None)  # fmt: skip
    with pytest.raises(NotReadyError, match="not ready after 2 s"):
        server.wait_ready(2.0)
    assert server.process.poll() is not None
