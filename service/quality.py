"""Live quality: the held-out metrics of the manifest, computed on live predictions joined to their labels.

One owner for the figure: the service's background task (`service.quality_task`, exported to Prometheus) and
`python -m pipelines quality` (the report) both run `PAIRS` and `live_metrics`, and judge with `is_degraded`.
Only live traffic counts (`source = 'live'`): smoke, load-check and shadow requests are synthetic. The window
selects predictions by when they were made, so a late label still counts for the traffic it judges.

Regression: rmse, mae (and r2, from two labels on); classification: accuracy, f1_macro and log_loss, each as
scikit-learn computes it (`tests/pipelines/test_quality.py` compares them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.sources import LIVE

PAIRS = f"""
SELECT l.label,
    CASE WHEN p.outputs ? 'columns' THEN p.outputs -> 'columns' -> 'prediction' -> l.index
         WHEN jsonb_typeof(p.outputs) = 'array' THEN p.outputs -> l.index -> 'prediction'
         ELSE p.outputs -> 'prediction' END,
    CASE WHEN p.outputs ? 'columns' THEN p.outputs -> 'columns' -> 'probabilities' -> l.index
         WHEN jsonb_typeof(p.outputs) = 'array' THEN p.outputs -> l.index -> 'probabilities'
         ELSE p.outputs -> 'probabilities' END,
    p.outputs -> 'classes'
FROM predictions p JOIN labels l ON l.request_id = p.request_id
WHERE p.source = '{LIVE}' AND p.model_version = %s AND p.created_at >= now() - make_interval(secs => %s)
"""  # noqa: S608  # nosec B608 (the constant LIVE)
NEWEST_LIVE_VERSION = f"SELECT model_version FROM predictions WHERE source = '{LIVE}' ORDER BY id DESC LIMIT 1"  # noqa: S608  # nosec B608


@dataclass(frozen=True)
class Pair:
    """One labelled instance: the label, what the model answered, and its class probabilities (a classifier's)."""

    label: Any
    prediction: Any
    probabilities: dict[str, float] | None = None


def pair_of(row: Sequence[Any]) -> Pair:
    """A row of PAIRS: a batch's probabilities are a row in its `classes` order, a single one's an object."""
    label, prediction, probabilities, classes = row
    if isinstance(probabilities, list) and isinstance(classes, list):
        probabilities = dict(zip(classes, probabilities, strict=True))
    return Pair(label, prediction, probabilities if isinstance(probabilities, dict) else None)


def live_metrics(task: str, pairs: Sequence[Pair]) -> dict[str, float | None]:
    """The live value of each metric over the pairs; None when the pairs cannot define it (none, or one for r2)."""
    pairs = [p for p in pairs if p.prediction is not None]  # an index beyond a row an earlier release wrote
    if task == "regression":
        return _regression(np.array([p.label for p in pairs], float), np.array([p.prediction for p in pairs], float))
    return _classification(pairs)


def _regression(y: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    if not len(y):
        return {"rmse": None, "mae": None, "r2": None}
    errors = y - predicted
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum(errors**2)) / total if len(y) > 1 and total > 0 else None
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors))), "r2": r2}


def _classification(pairs: Sequence[Pair]) -> dict[str, float | None]:
    if not pairs:
        return {"accuracy": None, "f1_macro": None, "log_loss": None}
    truth = [str(p.label) for p in pairs]
    answered = [str(p.prediction) for p in pairs]
    accuracy = sum(t == a for t, a in zip(truth, answered, strict=True)) / len(pairs)
    eps = float(np.finfo(np.float64).eps)  # scikit-learn clips probabilities to [eps, 1 - eps]
    likely = [min(max((p.probabilities or {}).get(str(p.label), 0.0), eps), 1 - eps) for p in pairs]
    log_loss = -sum(map(math.log, likely)) / len(pairs)
    return {"accuracy": accuracy, "f1_macro": _f1_macro(truth, answered), "log_loss": log_loss}


def _f1_macro(truth: list[str], answered: list[str]) -> float:
    """Mean F1 over every class seen in the labels or the answers (scikit-learn's, zero when undefined)."""
    scores = []
    for name in sorted(set(truth) | set(answered)):
        hits = sum(t == a == name for t, a in zip(truth, answered, strict=True))
        wrong = truth.count(name) + answered.count(name)
        scores.append(2 * hits / wrong if wrong else 0.0)
    return sum(scores) / len(scores)


def worse_by(live: float, held_out: float, higher_is_better: bool) -> float:
    """How much worse live is than held-out, relative to held-out (0.1: 10% worse; negative: better)."""
    delta = (held_out - live) if higher_is_better else (live - held_out)
    return delta / abs(held_out) if held_out else (math.inf if delta > 0 else 0.0)


def is_degraded(
    live: float | None, held_out: float | None, higher_is_better: bool, labels: int, tolerance: float, min_labels: int
) -> bool:
    """Live worse than held-out by more than `tolerance` (relative), judged only from `min_labels` labels on."""
    if live is None or held_out is None or labels < min_labels:
        return False
    return worse_by(live, held_out, higher_is_better) > tolerance
