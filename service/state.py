"""What the lifespan opens and the routes use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.auth import Authenticator
from service.model_runner import ModelRunner
from service.observability import AccessLog, Metrics
from service.prediction_log import PredictionLog
from service.settings import Settings
from service.validation import InstanceValidator


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    auth: Authenticator
    access_log: AccessLog | None
    predictor: ModelRunner | None = None
    validator: InstanceValidator | None = None
    log: PredictionLog | None = None
    problems: list[str] = field(default_factory=list)
    _predictions_child: Any = None

    def count_predictions(self, count: int) -> None:
        if self._predictions_child is None and self.predictor is not None:
            self._predictions_child = self.metrics.predictions.labels(self.predictor.version)
        self._predictions_child.inc(count)

    @property
    def model_version(self) -> str | None:
        return self.predictor.version if self.predictor else None

    def log_figures(self) -> dict[str, float]:
        figures: dict[str, float] = {"model_loaded": float(self.predictor is not None)}
        if self.predictor is not None:
            figures["model_calls"] = self.predictor.model_calls
        if self.log is not None:
            log = self.log
            figures |= {
                "queue_depth": log.queue_depth,
                "spool_bytes": log.spool_bytes,
                "oldest_unflushed_seconds": log.oldest_unflushed_age(),
                "db_up": float(log.db_ok),
                "write_errors": log.write_errors,
                "retries": log.retries,
                "committed_records": log.committed_records,
                "spooled_records": log.spooled_records,
                "replayed_records": log.replayed_records,
                "spool_damaged_bytes": log.spool.damaged_bytes_total,
            }
        return figures
