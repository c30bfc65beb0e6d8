"""The live quality of the served model, recomputed every `quality_interval_s` off the request path and exported.

Each pod computes the same figure from the shared log (for its own model version), so the alert takes the max
over pods. While Postgres is unreachable the last figure stays exported: it describes the traffic it was
computed from, and the spooled labels count once they are replayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from model.manifest import Manifest
from service.prediction_log import DB_ERRORS, PredictionLog
from service.quality import PAIRS, is_degraded, live_metrics, pair_of
from service.settings import Settings

logger = logging.getLogger("modelship.quality")


@dataclass(frozen=True)
class Snapshot:
    model_version: str
    labels: int
    live: dict[str, float | None]
    degraded: bool


class LiveQuality:
    def __init__(self, log: PredictionLog, manifest: Manifest, settings: Settings) -> None:
        self.log, self.manifest, self.settings = log, manifest, settings
        self.snapshot: Snapshot | None = None

    async def run_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except DB_ERRORS as exc:  # the log's own recovery reports the outage; keep the last figure
                logger.debug("live quality not refreshed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.settings.quality_interval_s)

    async def refresh(self) -> None:
        if not self.log.db_ok:
            return
        m, s = self.manifest, self.settings
        async with self.log.reading(timeout=s.db_connect_timeout_s) as conn:
            cur = await conn.execute(PAIRS, (m.version, s.quality_window_s))
            rows = await cur.fetchall()
        pairs = [pair_of(row) for row in rows]
        live = live_metrics(m.task, pairs)
        primary = m.primary_metric
        degraded = is_degraded(live.get(primary.name), m.metrics.get(primary.name), primary.higher_is_better,
                               len(pairs), s.quality_tolerance, s.quality_min_labels)  # fmt: skip
        self.snapshot = Snapshot(m.version, len(pairs), live, degraded)


class QualityCollector(Collector):
    """modelship_live_quality{model_version, metric} and its companions, read at scrape time."""

    def __init__(self, quality: Callable[[], LiveQuality | None]) -> None:
        self.quality = quality

    def collect(self) -> Iterator[Any]:
        quality = self.quality()
        if quality is None:
            return
        m = quality.manifest
        held = GaugeMetricFamily("modelship_held_out_quality", "The manifest's held-out metrics",
                                 labels=["model_version", "metric"])  # fmt: skip
        for name, held_out in m.metrics.items():
            held.add_metric([m.version, name], held_out)
        yield held
        snap = quality.snapshot
        if snap is None:
            return
        live = GaugeMetricFamily("modelship_live_quality", "Held-out metrics on labelled live predictions of the "
                                 "window (quality_window_s)", labels=["model_version", "metric"])  # fmt: skip
        for name, value in snap.live.items():
            if value is not None:
                live.add_metric([snap.model_version, name], value)
        yield live
        count = GaugeMetricFamily("modelship_live_quality_labels", "Labelled live predictions in the window",
                                  labels=["model_version"])  # fmt: skip
        count.add_metric([snap.model_version], snap.labels)
        yield count
        degraded = GaugeMetricFamily("modelship_live_quality_degraded", "1 when the primary metric is worse than "
                                     "held-out by more than quality_tolerance, from quality_min_labels labels on",
                                     labels=["model_version", "metric"])  # fmt: skip
        degraded.add_metric([snap.model_version, m.primary_metric.name], float(snap.degraded))
        yield degraded
