"""A bounded load with unique request ids, recording exactly which ids were acknowledged."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from loadtest.stats import percentile

BODY = {"size": 2500, "bedrooms": 3, "age": 10}


@dataclass
class LoadResult:
    sent: int = 0
    acked: set[str] = field(default_factory=set)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    retry_after_seen: bool = False

    def summary(self) -> str:
        p99, most = percentile(self.latencies, 0.99), max(self.latencies, default=0.0)
        return (
            f"sent={self.sent} acked={len(self.acked)} statuses={dict(self.statuses)} "
            f"errors={dict(self.errors)} p99={p99 * 1000:.0f}ms max={most * 1000:.0f}ms"
        )


async def drive(
    url: str,
    total: int,
    concurrency: int = 16,
    body: Callable[[int], Any] | None = None,
    progress: Callable[[int], None] | None = None,
    timeout: float = 30.0,
    prefix: str = "",
    rate: float | None = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Send `total` requests from `concurrency` workers; `rate` paces them (requests per second)."""
    result = LoadResult()
    began = time.perf_counter()
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

        async def worker() -> None:
            for i in counter:
                if rate:
                    await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
                rid = f"{prefix}{uuid.uuid4().hex}"
                started = time.perf_counter()
                result.sent += 1
                try:
                    response = await client.post(
                        "/predict", json=body(i) if body else BODY, headers={**(headers or {}), "x-request-id": rid}
                    )
                except httpx.HTTPError as exc:
                    result.errors[type(exc).__name__] += 1
                    continue
                result.latencies.append(time.perf_counter() - started)
                result.statuses[response.status_code] += 1
                if response.status_code == 200:
                    result.acked.add(rid)
                elif response.status_code == 503 and "retry-after" in response.headers:
                    result.retry_after_seen = True
                if progress:
                    progress(result.sent)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


def drive_in_thread(*args: Any, **kwargs: Any) -> tuple[threading.Thread, list[LoadResult]]:
    box: list[LoadResult] = []
    thread = threading.Thread(target=lambda: box.append(asyncio.run(drive(*args, **kwargs))), daemon=True)
    thread.start()
    return thread, box


def logged_counts(database_url: str, ids: set[str]) -> collections.Counter[str]:
    """How many rows each of `ids` has in the prediction log."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT request_id, count(*) FROM predictions WHERE request_id = ANY(%s) GROUP BY request_id",
            (list(ids),),
        ).fetchall()
    return collections.Counter({rid: n for rid, n in rows})


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def drained(url: str) -> bool:
    """Nothing waits in the spool and writes go straight to Postgres."""
    spool = metric(url, "modelship_prediction_log_spool_bytes")
    return spool == 0 and metric(url, "modelship_prediction_log_db_up") == 1
