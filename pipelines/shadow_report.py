"""The shadow report: how a challenger's answers compare with the champion's on the same requests.

Rows of `shadow_predictions` are joined to `predictions` by request_id, instance by instance. Disagreement, the
number `promote --require-shadow-agreement` gates on (docs/shadow.md): for a classifier the share of instances
whose predicted class differs (1 - match rate); for a regression the share whose relative difference
|challenger - champion| / max(|champion|, 1e-9) exceeds a tolerance (`shadow_rel_tolerance`, 5% by default).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from loadtest.stats import percentiles
from service.db import readable_outputs

QUANTILES = (0.5, 0.9, 0.99)
ROWS = """
SELECT p.request_id, p.model_version, s.model_version, p.outputs, s.outputs, p.latency_ms, s.latency_ms
FROM shadow_predictions s JOIN predictions p USING (request_id)
WHERE s.model_version = %s ORDER BY s.id
"""
LATEST = "SELECT model_version FROM shadow_predictions ORDER BY id DESC LIMIT 1"
LABELS = "SELECT request_id, index, label FROM labels WHERE request_id = ANY(%s)"


@dataclass(frozen=True)
class Pair:
    """One instance both models answered."""

    request_id: str
    index: int
    champion: Any  # the predicted class, or the value
    challenger: Any


@dataclass
class Rows:
    """What the log holds for one challenger: its pairs, and each request's latency on both sides."""

    challenger: str
    champions: Counter[str] = field(default_factory=Counter)
    pairs: list[Pair] = field(default_factory=list)
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {"champion": [], "challenger": []})
    labels: dict[tuple[str, int], Any] | None = None  # None: no labels table


def predictions_of(outputs: Any) -> list[Any]:
    """A logged answer's predictions, one per instance (a single instance's object, or a batch's rows)."""
    readable = readable_outputs(outputs)
    return [item["prediction"] for item in (readable if isinstance(readable, list) else [readable])]


def read_rows(conn: psycopg.Connection[Any], challenger: str | None = None) -> Rows | None:
    """The joined rows of CHALLENGER (default: the newest one shadowed); None when the log has none."""
    if challenger is None:
        found = conn.execute(LATEST).fetchone() if _exists(conn, "shadow_predictions") else None
        if found is None:
            return None
        challenger = str(found[0])
    rows = Rows(challenger)
    for request_id, champion, _, p_out, s_out, p_ms, s_ms in conn.execute(ROWS, (challenger,)):
        rows.champions[champion] += 1
        rows.latency_ms["champion"].append(float(p_ms))
        rows.latency_ms["challenger"].append(float(s_ms))
        for index, (a, b) in enumerate(zip(predictions_of(p_out), predictions_of(s_out), strict=True)):
            rows.pairs.append(Pair(request_id, index, a, b))
    if _exists(conn, "labels"):
        ids = sorted({p.request_id for p in rows.pairs})
        rows.labels = {(rid, int(i)): label for rid, i, label in conn.execute(LABELS, (ids,))}
    return rows


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(found and found[0])


# -- the numbers ---------------------------------------------------------------------------------------
def is_classifier(pairs: list[Pair]) -> bool:
    return bool(pairs) and isinstance(pairs[0].champion, str)


def agreement(pairs: list[Pair], rel_tolerance: float) -> dict[str, Any]:
    """Classifier: match rate and confusion {champion: {challenger: n}}; regression: differences and MAE."""
    if not pairs:
        return {"instances": 0, "disagreement": None}
    if is_classifier(pairs):
        matches = sum(p.champion == p.challenger for p in pairs)
        confusion: dict[str, Counter[str]] = {}
        for p in pairs:
            confusion.setdefault(p.champion, Counter())[p.challenger] += 1
        return {"instances": len(pairs), "match_rate": matches / len(pairs), "disagreement": 1 - matches / len(pairs),
                "confusion": {k: dict(v) for k, v in sorted(confusion.items())}}  # fmt: skip
    absolute = [abs(p.challenger - p.champion) for p in pairs]
    relative = [a / max(abs(p.champion), 1e-9) for a, p in zip(absolute, pairs, strict=True)]
    mean = sum(p.champion for p in pairs) / len(pairs)
    mae = sum(absolute) / len(pairs)
    return {
        "instances": len(pairs),
        "mae": mae,
        "champion_mean": mean,
        "abs_diff": _quantiles(absolute),
        "rel_diff": _quantiles(relative),
        "rel_tolerance": rel_tolerance,
        "disagreement": sum(r > rel_tolerance for r in relative) / len(pairs),
    }


def _quantiles(values: list[float]) -> dict[str, float]:
    found = dict(zip(("p50", "p90", "p99"), percentiles(values, *QUANTILES), strict=True))
    return found | {"max": max(values, default=0.0)}


def quality(rows: Rows) -> dict[str, Any] | None:
    """Each model's live quality on the labelled instances: accuracy (classifier) or MAE (regression)."""
    if rows.labels is None:
        return None
    labelled = [(p, rows.labels[(p.request_id, p.index)]) for p in rows.pairs if (p.request_id, p.index) in rows.labels]
    if not labelled:
        return {"labelled": 0}
    if is_classifier(rows.pairs):
        score = {side: sum(getattr(p, side) == str(y) for p, y in labelled) / len(labelled)
                 for side in ("champion", "challenger")}  # fmt: skip
        return {"labelled": len(labelled), "metric": "accuracy", **score}
    error = {side: sum(abs(getattr(p, side) - float(y)) for p, y in labelled) / len(labelled)
             for side in ("champion", "challenger")}  # fmt: skip
    return {"labelled": len(labelled), "metric": "mae", **error}


def latency(rows: Rows) -> dict[str, dict[str, float]]:
    """Per request: the champion's as logged (receipt to answer), the challenger's from its copy to its answer."""
    return {side: _quantiles(values) for side, values in rows.latency_ms.items()}


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
