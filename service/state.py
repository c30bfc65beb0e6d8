"""What the app holds: settings, metrics and keys from the start, and what the lifespan opens, set once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.auth import Authenticator
from service.core import Serving
from service.model_runner import ModelRunner
from service.observability import AccessLog, Metrics
from service.prediction_log import PredictionLog
from service.quality_task import LiveQuality
from service.settings import Settings
from service.sources import LIVE
from service.validation import InstanceValidator


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    auth: Authenticator
    access_log: AccessLog | None
    serving: Serving | None = None  # set once, in the lifespan, when the model and the log are open
    quality: LiveQuality | None = None  # the live-quality task's figures, set in the lifespan
    _predictions_children: dict[str, Any] = field(default_factory=dict)

    def open(self, serving: Serving) -> None:
        if self.serving is not None:
            raise RuntimeError("the model and the prediction log are opened once")
        self.serving = serving
        self._predictions_children[LIVE] = self.metrics.predictions.labels(serving.predictor.version, LIVE)

    def count_predictions(self, count: int, source: str = LIVE) -> None:
        child = self._predictions_children.get(source)
        if child is None:  # sources are few (live, smoke, loadcheck, bench, shadow): bounded cardinality
            child = self._predictions_children[source] = self.metrics.predictions.labels(self.model_version, source)
        child.inc(count)

    @property
    def predictor(self) -> ModelRunner | None:
        return self.serving.predictor if self.serving else None

    @property
    def validator(self) -> InstanceValidator | None:
        return self.serving.validator if self.serving else None

    @property
    def log(self) -> PredictionLog | None:
        return self.serving.log if self.serving else None

    @property
    def model_version(self) -> str | None:
        return self.serving.predictor.version if self.serving else None

    def readiness(self) -> tuple[bool, dict[str, bool], list[str]]:
        """Whether the service can answer and log, each check, and why not: /ready and v2's ready routes."""
        log = self.log
        checks = {
            "model_loaded": self.serving is not None,
            "log_accepting": bool(log and log.accepting),
            "database_reachable": bool(log and log.db_ok),
        }
        reasons = []
        if log is None:
            reasons.append("the model is not loaded yet")
        elif not checks["log_accepting"]:
            reasons.append(f"the prediction log cannot accept records: {log.unavailable_reason()}")
        return checks["model_loaded"] and checks["log_accepting"], checks, reasons

    def log_figures(self) -> dict[str, float]:
        figures: dict[str, float] = {"model_loaded": float(self.serving is not None)}
        if self.serving is not None:
            log = self.serving.log
            figures |= {
                "model_calls": self.serving.predictor.model_calls,
                "queue_depth": log.queue_depth,
                "spool_bytes": log.spool_bytes,
                "oldest_unflushed_seconds": log.oldest_unflushed_age(),
                "db_up": float(log.db_ok),
                "write_errors": log.write_errors,
                "retries": log.retries,
                "committed_records": log.committed_records,
                "spooled_records": log.spooled_records,
                "replayed_records": log.replayed_records,
                "rejected_labels": log.rejected_labels,
                "spool_damaged_bytes": log.spool.damaged_bytes_total,
            }
        return figures
