"""The real wrk (Debian's 4.1.0, `make wrk`) driving small in-process HTTP servers for about a second."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtest.bench.__main__ import choose_loadgen
from loadtest.bench.harness import BenchSettings, run_bench
from loadtest.bench.loadgen import LoadError, LoadResult
from loadtest.bench.report import write_reports
from loadtest.bench.wrk import describe_loadgen, run_wrk
from pipelines.devtools.embedded_pg import EmbeddedPostgres

CONNECTIONS = 4
# Quotes, a backslash, a newline escape and UTF-8: the Lua literals must carry every byte unchanged.
BODIES = [b'{"size": %d}' % i for i in range(6)] + [b'{"name": "q\\"\\\\ \\n \xc3\xa9"}']


class Recorder(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1; counts every body it reads and answers `answer`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small answer per request: no 40 ms delayed-ACK stalls
    answer = (200, b'{"prediction": 1.5}')
    seen: Counter[bytes] = Counter()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen[body] += 1
        status, payload = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk resets its connections when it stops; that is not the server's failure


def serve(answer: tuple[int, bytes], protocol: str = "HTTP/1.1") -> Iterator[tuple[int, Counter[bytes]]]:
    class Handler(Recorder):
        protocol_version = protocol  # HTTP/1.0: close after every answer, as gunicorn's sync workers do

    Handler.answer, Handler.seen = answer, Counter()
    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], Handler.seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def good() -> Iterator[tuple[int, Counter[bytes]]]:
    yield from serve((200, b'{"prediction": 1.5}'))


def load(port: int, warmup_s: float = 0.0, on_window: Callable[[str], None] = lambda _phase: None) -> LoadResult:
    return run_wrk(
        "127.0.0.1", port, "/predict", BODIES, connections=CONNECTIONS, warmup_s=warmup_s, duration_s=1.0,
        expect=b'"prediction"', on_window=on_window,
    )  # fmt: skip


@pytest.mark.needs_engine
def test_the_window_is_measured_after_an_unmeasured_warm_up(good: tuple[int, Counter[bytes]]) -> None:
    port, seen = good
    phases: list[str] = []
    result = load(port, warmup_s=1.0, on_window=phases.append)
    assert phases == ["start", "end"]
    assert result.answers > 0 and result.errors == 0 and result.connections == CONNECTIONS
    assert result.rps == pytest.approx(result.answers / result.duration_s)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms and result.mean_ms > 0
    assert result.loadgen_cpu_s > 0  # wrk's own rusage, not ours
    # the answer checks and the warm-up count there, the window alone does not
    assert result.answered_total > result.answers + len(BODIES)
    assert sum(seen.values()) >= result.answered_total


@pytest.mark.needs_engine
def test_the_script_cycles_every_body_unchanged(good: tuple[int, Counter[bytes]]) -> None:
    port, seen = good
    result = load(port)
    assert set(seen) == set(BODIES)
    # one answer check per body, then wrk's share: each thread cycles the list in order, so the counts
    # differ only by the requests cut off at the end (at most one per connection) and one per thread
    wrk_sent = [seen[body] - 1 for body in BODIES]
    assert min(wrk_sent) > 0 and max(wrk_sent) - min(wrk_sent) <= CONNECTIONS + 2, seen
    assert sum(wrk_sent) >= result.answers


@pytest.mark.needs_engine
def test_a_server_closing_every_connection_is_reconnected() -> None:
    for port, seen in serve((200, b'{"prediction": 1.5}'), protocol="HTTP/1.0"):
        result = load(port)
        assert result.answers > 0 and result.errors == 0
        assert sum(seen.values()) >= result.answers


@pytest.mark.needs_engine
def test_a_server_answering_500_gives_errors_not_answers() -> None:
    for port, _seen in serve((500, b'{"error": "boom"}')):
        result = load(port)
        assert result.answers > 0 and result.errors == result.answers
        assert result.rps == 0 and result.answered_total == 0


@pytest.mark.needs_engine
def test_a_server_answering_the_wrong_body_is_not_timed() -> None:
    for port, seen in serve((200, b'{"label": "setosa"}')):
        with pytest.raises(LoadError, match="without b'\"prediction\"'"):
            load(port)
        assert sum(seen.values()) == 1  # stopped at the first wrong answer, before wrk ran


@pytest.mark.needs_engine
def test_nothing_listening_is_an_error_not_a_zero() -> None:
    with pytest.raises(LoadError, match="cannot connect"):
        run_wrk("127.0.0.1", 9, "/predict", [b"{}"], connections=1, warmup_s=0, duration_s=1)


def test_wrk_is_the_default_when_installed() -> None:
    assert choose_loadgen(None, wrk_installed=True) == "wrk"
    assert choose_loadgen(None, wrk_installed=False) == "python"
    assert choose_loadgen("python", wrk_installed=True) == "python"
    assert choose_loadgen("wrk", wrk_installed=False) is None
    assert describe_loadgen("wrk").startswith("wrk -t2 (wrk ") and "4.1.0" in describe_loadgen("wrk")


@pytest.mark.slow
def test_the_bench_through_wrk_logs_a_row_per_2xx(
    artifacts_dir: Path, pg_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    settings = BenchSettings(
        out_dir=tmp_path / "bench", artifacts_dir=artifacts_dir, duration_s=1.0, warmup_s=1.0,
        connections=8, workers=1, cold_starts=0, only=frozenset({"modelship-house"}), loadgen="wrk",
    )  # fmt: skip
    run = run_bench(settings, postgres=pg_server)
    text, _json_path, _png = write_reports(run, settings.out_dir)
    assert run.failures == {}
    (row,) = run.results
    assert row.load.answers > 0 and row.load.errors == 0 and row.server_cpu_us > 0
    # every 2xx wrk saw (answer checks and warm-up included) is a durable row; answers cut off when each
    # of the two wrk runs stopped may be logged but unseen: at most one per connection per run
    assert row.rows_logged is not None
    assert row.answered_total <= row.rows_logged <= row.answered_total + 2 * settings.connections, row
    assert "load generator: wrk -t2 (wrk " in text
