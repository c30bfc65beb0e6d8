"""The bench's closed-loop generator against small in-process HTTP servers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtest.bench.loadgen import LoadError, LoadResult, encode_post, run_load


class Handler(BaseHTTPRequestHandler):
    answer = (200, b'{"prediction": 1.5}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def keep_alive_port() -> Iterator[int]:
    class KeepAlive(Handler):
        protocol_version = "HTTP/1.1"

    yield from serve(KeepAlive)


@pytest.fixture
def closing_port() -> Iterator[int]:
    yield from serve(Handler)  # HTTP/1.0: the server closes after every answer, like gunicorn's sync workers


def load(port: int, expect: bytes = b'"prediction"') -> LoadResult:
    requests = [encode_post("127.0.0.1", port, "/predict", b'{"size": %d}' % i) for i in range(4)]
    return run_load("127.0.0.1", port, requests, connections=4, warmup_s=0.2, duration_s=0.5, expect=expect)


def test_keep_alive_answers_are_counted_and_timed(keep_alive_port: int) -> None:
    phases: list[str] = []
    requests = [encode_post("127.0.0.1", keep_alive_port, "/predict", b"{}")]
    result = run_load(
        "127.0.0.1", keep_alive_port, requests, connections=4, warmup_s=0.2, duration_s=0.5,
        expect=b'"prediction"', on_window=phases.append,
    )  # fmt: skip
    assert phases == ["start", "end"]
    assert result.answers > 10 and result.errors == 0 and result.statuses == {200: result.answers}
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert result.rps == pytest.approx(result.answers / result.duration_s)
    assert result.answered_total >= result.answers  # the warm-up is counted there, not in the window


def test_a_server_closing_every_connection_is_reconnected(closing_port: int) -> None:
    result = load(closing_port)
    assert result.answers > 10 and result.errors == 0


def test_non_2xx_and_wrong_bodies_are_errors(keep_alive_port: int) -> None:
    Handler.answer = (500, b'{"error": "boom"}')
    try:
        failing = load(keep_alive_port)
    finally:
        Handler.answer = (200, b'{"prediction": 1.5}')
    assert failing.errors == failing.answers and failing.rps == 0
    wrong = load(keep_alive_port, expect=b'"predictions"')
    assert wrong.errors == wrong.answers and wrong.rps == 0


def test_nothing_listening_is_an_error_not_a_zero() -> None:
    with pytest.raises(LoadError, match="cannot connect"):
        run_load("127.0.0.1", 9, [b""], connections=1, warmup_s=0.1, duration_s=0.1)
