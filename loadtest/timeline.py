"""Per-second latency percentiles, recorded from every request (for the latency-over-time plot).

Locust's own history CSV holds a 10-second sliding window and can miss the last second; here every
sample is kept, bucketed by the second it started in, and reduced once at the end.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from loadtest.stats import percentiles

AGGREGATED = "Aggregated"
COLUMNS = ("second", "endpoint", "requests", "failures", "p50_ms", "p95_ms", "p99_ms", "max_ms")


@dataclass(frozen=True)
class Bucket:
    second: int
    endpoint: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


class Timeline:
    """Collects (start time, endpoint, latency, failed) samples; reduces them per second."""

    def __init__(self) -> None:
        self._latencies: dict[tuple[int, str], list[float]] = defaultdict(list)
        self._failures: dict[tuple[int, str], int] = defaultdict(int)
        self._origin: float | None = None

    def record(self, started_at: float, endpoint: str, latency_ms: float, failed: bool) -> None:
        if self._origin is None:
            self._origin = started_at
        second = max(int(started_at - self._origin), 0)
        for key in ((second, endpoint), (second, AGGREGATED)):
            self._latencies[key].append(latency_ms)
            self._failures[key] += failed

    def buckets(self) -> list[Bucket]:
        rows = []
        for (second, endpoint), values in sorted(self._latencies.items()):
            p50, p95, p99 = percentiles(values, 0.50, 0.95, 0.99)
            rows.append(
                Bucket(
                    second=second,
                    endpoint=endpoint,
                    requests=len(values),
                    failures=self._failures[(second, endpoint)],
                    p50_ms=p50,
                    p95_ms=p95,
                    p99_ms=p99,
                    max_ms=max(values),
                )
            )
        return rows

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for b in self.buckets():
                writer.writerow(
                    [b.second, b.endpoint, b.requests, b.failures]
                    + [f"{v:.3f}" for v in (b.p50_ms, b.p95_ms, b.p99_ms, b.max_ms)]
                )


def read_csv(path: Path) -> list[Bucket]:
    with path.open(newline="") as fh:
        return [
            Bucket(
                second=int(row["second"]),
                endpoint=row["endpoint"],
                requests=int(row["requests"]),
                failures=int(row["failures"]),
                p50_ms=float(row["p50_ms"]),
                p95_ms=float(row["p95_ms"]),
                p99_ms=float(row["p99_ms"]),
                max_ms=float(row["max_ms"]),
            )
            for row in csv.DictReader(fh)
        ]
