"""JSON logs, the per-request access line, and Prometheus metrics."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call] # the _created series double the scrape size for no use here
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLog:
    """One JSON line per request, buffered and flushed every 200 ms (and at shutdown).

    Writing each line straight to stdout is a syscall per request; a buffer keeps the lines at
    a fraction of that cost. They are operational logs: the prediction itself is in Postgres.
    """

    def __init__(self, stream: TextIO | None = None, max_buffer: int = 512) -> None:
        self.stream = stream or sys.stdout
        self.max_buffer = max_buffer
        self._lines: list[bytes] = []

    def write(self, entry: dict[str, Any]) -> None:
        self._lines.append(orjson.dumps(entry))
        if len(self._lines) >= self.max_buffer:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self.stream.write(b"\n".join(lines).decode() + "\n")
        self.stream.flush()


class Metrics:
    def __init__(self, log_figures: Callable[[], dict[str, float]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelship_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelship_http_request_duration_seconds",
            "Request latency by route and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "modelship_predictions",
            "Instances predicted, by model version and request source (live, or X-Modelship-Source)",
            ["model_version", "source"],
            registry=self.registry,
        )
        # Observed by the group-commit writer, not the request: a slow database shows here before
        # it shows in request latency, and rows per commit says how much a commit carried.
        self.commit_seconds = Histogram(
            "modelship_prediction_log_commit_seconds",
            "Duration of one group commit to Postgres (connection, INSERT and WAL flush), committed ones only",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commit_rows = Histogram(
            "modelship_prediction_log_commit_rows",
            "Prediction-log records (one per request) per committed group",
            buckets=COMMIT_ROWS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LogCollector(log_figures))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_commit(self, seconds: float, rows: int) -> None:
        self.commit_seconds.observe(seconds)
        self.commit_rows.observe(rows)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            labels = (route, method, str(status))
            children = self._children[key] = (self.requests.labels(*labels), self.latency.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)


class _LogCollector(Collector):
    """Prediction-log figures read at scrape time: nothing to maintain on the hot path."""

    GAUGES = {
        "queue_depth": "Records waiting for the group commit",
        "spool_bytes": "Bytes in the local spool, not yet in Postgres",
        "oldest_unflushed_seconds": "Age of the oldest record not yet in Postgres",
        "db_up": "1 while writes go straight to Postgres",
        "model_loaded": "1 once the model is loaded",
    }
    COUNTERS = {
        "write_errors": "Failed writes to Postgres",
        "retries": "Attempts to reconnect to Postgres",
        "committed_records": "Records committed directly to Postgres",
        "spooled_records": "Records written to the local spool",
        "replayed_records": "Spooled records replayed into Postgres",
        "rejected_labels": "Labels dropped by the commit's checks (spooled while Postgres was down, checked at replay)",
        "spool_damaged_bytes": "Bytes of damaged spool tails set aside",
        "model_calls": "Calls of the model (micro-batches)",
    }

    def __init__(self, figures: Callable[[], dict[str, float]]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Any]:
        values = self.figures()
        for name, text in self.GAUGES.items():
            yield GaugeMetricFamily(f"modelship_prediction_log_{name}", text, value=values.get(name, 0.0))
        for name, text in self.COUNTERS.items():
            yield CounterMetricFamily(f"modelship_prediction_log_{name}", text, value=values.get(name, 0.0))


def now() -> float:
    return time.perf_counter()
