"""A closed-loop HTTP/1.1 load generator (wrk's model) in asyncio + uvloop.

N connections each keep exactly one request in flight and send the next one as soon as the answer is
complete, so throughput is what the server sustains at that concurrency. Requests are pre-encoded and
responses are parsed just enough (status, Content-Length, Connection: close) to keep the generator's
own cost per request small; it is measured and reported because it shares the cores with the server.

Latency is from writing the request to reading the last byte of the answer, like wrk: a new TCP
connection (gunicorn sync workers close after every answer) costs throughput but not latency.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from loadtest.stats import percentiles
from service.sources import BENCH, SOURCE_HEADER

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it; plain asyncio still works
    uvloop = None  # type: ignore[assignment]

RECONNECT_PAUSE_S = 0.01
CONNECT_TIMEOUT_S = 5.0


def encode_post(host: str, port: int, path: str, body: bytes, source: str = BENCH) -> bytes:
    """One request; `source` goes in X-Modelship-Source (`live` counts as users' traffic: drift counters on)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"{SOURCE_HEADER}: {source}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class LoadError(RuntimeError):
    """The load could not be applied or measured (malformed answers, no answers)."""


@dataclass
class _Tally:
    """What the connections report; only answers completed inside the window are recorded."""

    recording: bool = False
    stopping: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    bad_bodies: int = 0
    transport_errors: int = 0
    answered_total: int = 0  # every 2xx over the whole run, warm-up included (to match logged rows)


class _Connection(asyncio.Protocol):
    def __init__(self, driver: _Driver) -> None:
        self.driver = driver
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.need = -1  # total bytes of the current answer once its head is parsed
        self.body_len = 0
        self.status = 0
        self.close_after = False
        self.sent_at = 0
        self.in_flight = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.driver.open_connections.add(self)
        self._send()

    def _send(self) -> None:
        if self.driver.tally.stopping or self.transport is None:
            if self.transport is not None:
                self.transport.close()
            return
        self.in_flight = True
        self.sent_at = time.perf_counter_ns()
        self.transport.write(next(self.driver.requests))

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except (ValueError, ConnectionError) as exc:
            self.driver.failure = exc  # a malformed answer: stop and report, never skew the figures
            self.driver.tally.stopping = True
            if self.transport is not None:
                self.transport.close()

    def _receive(self, data: bytes) -> None:
        self.buffer += data
        while self.in_flight:
            if self.need < 0 and not self._parse_head():
                return
            if len(self.buffer) < self.need:
                return
            body = bytes(self.buffer[self.need - self.body_len : self.need])
            del self.buffer[: self.need]
            self.need = -1
            self.in_flight = False
            self.driver.answered(self.status, body, time.perf_counter_ns() - self.sent_at)
            if self.close_after:
                assert self.transport is not None
                self.transport.close()  # connection_lost opens the next one
                return
            self._send()

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).lower()
        self.status = int(head[9:12])
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            raise ConnectionError("answer without Content-Length (chunked answers are not supported)")
        stop = head.find(b"\r\n", start + 2)
        self.body_len = int(head[start + 17 : stop if stop > 0 else None])
        keep_alive = head.startswith(b"http/1.1") or b"\r\nconnection: keep-alive" in head
        self.close_after = not keep_alive or b"\r\nconnection: close" in head
        self.need = end + 4 + self.body_len
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.driver.open_connections.discard(self)
        if self.in_flight:
            self.driver.tally.transport_errors += 1
        self.driver.reconnect()


class _Driver:
    def __init__(self, host: str, port: int, requests: Sequence[bytes], expect: bytes) -> None:
        self.host, self.port = host, port
        self.requests: Iterator[bytes] = itertools.cycle(requests)
        self.expect = expect
        self.tally = _Tally()
        self.pending: set[asyncio.Task[None]] = set()
        self.open_connections: set[_Connection] = set()
        self.failure: Exception | None = None

    def answered(self, status: int, body: bytes, latency_ns: int) -> None:
        ok = 200 <= status < 300
        if ok:
            self.tally.answered_total += 1
        if not self.tally.recording:
            return
        self.tally.statuses[status] += 1
        if ok and self.expect not in body:
            self.tally.bad_bodies += 1
        self.tally.latencies_ns.append(latency_ns)

    def reconnect(self) -> None:
        if not self.tally.stopping:
            task = asyncio.get_running_loop().create_task(self.open())
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def open(self) -> None:
        while not self.tally.stopping:
            try:
                await asyncio.get_running_loop().create_connection(lambda: _Connection(self), self.host, self.port)
                return
            except OSError:
                self.tally.transport_errors += self.tally.recording
                await asyncio.sleep(RECONNECT_PAUSE_S)


@dataclass(frozen=True)
class LoadResult:
    connections: int
    duration_s: float
    answers: int
    statuses: dict[int, int]
    errors: int  # non-2xx, 2xx without the expected body, and broken connections
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    loadgen_cpu_s: float
    answered_total: int


def _cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _drive(
    driver: _Driver, connections: int, warmup_s: float, duration_s: float, on_window: Callable[[str], None]
) -> LoadResult:
    loop = asyncio.get_running_loop()
    for _ in range(connections):
        try:  # the first connections must succeed: a server that is not there is an error, not a zero
            await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(driver), driver.host, driver.port), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            raise LoadError(f"cannot connect to {driver.host}:{driver.port}: {exc!r}") from exc
    await asyncio.sleep(warmup_s)
    on_window("start")
    cpu0, t0 = _cpu_now(), time.perf_counter()
    driver.tally.recording = True
    await asyncio.sleep(duration_s)
    driver.tally.recording = False
    elapsed, cpu = time.perf_counter() - t0, _cpu_now() - cpu0
    on_window("end")
    driver.tally.stopping = True
    await asyncio.sleep(0.2)  # let in-flight answers land so servers are not cut mid-write
    for connection in list(driver.open_connections):
        if connection.transport is not None:
            connection.transport.close()
    await asyncio.sleep(0)
    if driver.failure is not None:
        raise LoadError(f"the load generator stopped: {driver.failure!r}")
    tally = driver.tally
    if not tally.latencies_ns:
        raise LoadError("no answer at all in the measured window")
    latencies = np.asarray(tally.latencies_ns, dtype=np.float64) / 1e6
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    errors = len(latencies) - ok + tally.bad_bodies + tally.transport_errors
    p50, p90, p99 = percentiles(latencies.tolist(), 0.50, 0.90, 0.99)
    return LoadResult(
        connections=connections,
        duration_s=elapsed,
        answers=len(latencies),
        statuses=dict(tally.statuses),
        errors=errors,
        rps=(ok - tally.bad_bodies) / elapsed,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=float(latencies.max()),
        mean_ms=float(latencies.mean()),
        loadgen_cpu_s=cpu,
        answered_total=tally.answered_total,
    )


def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int,
    warmup_s: float,
    duration_s: float,
    expect: bytes = b"",
    on_window: Callable[[str], None] = lambda _phase: None,
) -> LoadResult:
    """Drive host:port with `requests` (cycled) and measure the window after the warm-up.

    `expect` must occur in every 2xx body (a cheap guard against a server answering the wrong thing);
    `on_window("start"|"end")` is called at the window's edges, e.g. to sample server CPU.
    """
    driver = _Driver(host, port, requests, expect)
    coroutine = _drive(driver, connections, warmup_s, duration_s, on_window)
    if uvloop is not None:
        return uvloop.run(coroutine)
    return asyncio.run(coroutine)
