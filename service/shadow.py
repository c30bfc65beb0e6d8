"""The shadow: a challenger model scoring sampled copies of requests, off the primary's response path.

After the primary's answer is durable, `offer` (O(1), never raises) may put a copy of the validated matrix on a
bounded queue; a full queue drops the copy and counts it. One background task takes what is waiting, scores it
with the challenger in one model call, and logs each answer durably in `shadow_predictions` under the primary's
request_id with source `shadow`, through a PredictionLog (group commit, spool) of its own. The model call runs in a
worker thread, never in the primary's event loop, and the task keeps to a share of the time
(`shadow_cpu_share`): after a batch that took t seconds it sleeps t * (1 - share) / share (50 ms at least, so
copies gather into one model call and one INSERT). A slow challenger then fills its queue and drops
copies, instead of taking time from the primary. docs/shadow.md says why it is in-process, not a mirror.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from model.artifact import ArtifactError
from model.manifest import ManifestError
from service.core import Result, record_of
from service.db import SHADOW_PREDICTIONS, LogRecord
from service.errors import LogUnavailable
from service.model_runner import ModelRunner, Outputs
from service.prediction_log import PredictionLog
from service.settings import Settings
from service.sources import SHADOW
from service.spool import Spool

logger = logging.getLogger("modelship.shadow")
BATCH_MAX = 1000  # copies per challenger call
LINGER_S = 0.05  # the least time between two batches
OUTCOMES = ("mirrored", "scored", "dropped", "failed")


class ChallengerFault(RuntimeError):
    """The test-only `shadow_test_fail` setting: the challenger raises on every batch."""


@dataclass(frozen=True, slots=True)
class Copy:
    result: Result  # the primary's: request id, source, instances
    matrix: np.ndarray
    mirrored_at: float  # time.perf_counter() when it was queued


@dataclass(frozen=True, slots=True)
class ShadowOptions:
    sample: float
    sources: frozenset[str]
    queue_max: int
    cpu_share: float
    record_timeout_s: float
    slowdown: float = 1.0  # test only
    fail: bool = False  # test only


class Shadow:
    def __init__(
        self, challenger: ModelRunner, log: PredictionLog, names: list[str], options: ShadowOptions,
        draw: Callable[[], float] = random.random,
    ) -> None:  # fmt: skip
        self.challenger, self.log, self.names, self.options = challenger, log, names, options
        self._draw = draw
        self._queue: deque[Copy] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))

    @property
    def version(self) -> str:
        return self.challenger.version

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def offer(self, result: Result, matrix: np.ndarray) -> None:
        """Maybe queue a copy of a request the primary answered; a full queue drops it (counted)."""
        options = self.options
        if result.source not in options.sources or (options.sample < 1 and self._draw() >= options.sample):
            return
        if len(self._queue) >= options.queue_max:
            self.counts["dropped"] += 1
            return
        self._queue.append(Copy(result, matrix, time.perf_counter()))
        self.counts["mirrored"] += 1
        self._wakeup.set()

    async def start(self) -> None:
        await self.log.start()
        self._task = asyncio.create_task(self._run(), name="shadow-scorer")

    async def close(self, timeout: float) -> None:
        """Stop scoring (what is still queued is not scored), then flush the shadow's log."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.log.close(timeout)

    async def _run(self) -> None:
        share, pause = self.options.cpu_share, LINGER_S
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            # Copies gather meanwhile, so one model call and one INSERT serve many: woken for every copy, the
            # task cost a round trip to Postgres per copy.
            await asyncio.sleep(pause)
            batch = [self._queue.popleft() for _ in range(min(BATCH_MAX, len(self._queue)))]
            began = time.perf_counter()
            # In a worker thread: the challenger's model call never holds the primary's event loop (a slow one
            # only waits longer and drops copies); numpy releases the GIL for its work.
            records, failed = await asyncio.to_thread(self._score, batch)
            self.counts["failed"] += failed
            busy = time.perf_counter() - began
            if records:
                await self._keep(records)
            pause = max(LINGER_S, busy * (1 - share) / share)

    def _score(self, batch: list[Copy]) -> tuple[list[LogRecord], int]:
        """The challenger's rows for a batch, in one model call, and how many copies failed (all, if it raised)."""
        try:
            began = time.perf_counter()
            outputs = self._predict(np.concatenate([c.matrix for c in batch]) if len(batch) > 1 else batch[0].matrix)
            if self.options.slowdown > 1:  # test only: a challenger this many times slower
                time.sleep((time.perf_counter() - began) * (self.options.slowdown - 1))
        except Exception as exc:  # any model failure: the shadow counts it, the primary never sees it
            logger.warning("challenger %s failed on %d copies: %s", self.version, len(batch), exc)
            return [], len(batch)
        done, records, start = time.perf_counter(), [], 0
        for copy in batch:
            rows = len(copy.matrix)
            result = Result(copy.result.request_id, self.challenger, copy.result.instances,
                            outputs.rows(start, start + rows), [], SHADOW)  # fmt: skip
            records.append(record_of(result, self.names, (done - copy.mirrored_at) * 1000))
            start += rows
        return records, 0

    def _predict(self, matrix: np.ndarray) -> Outputs:
        if self.options.fail:
            raise ChallengerFault("shadow_test_fail is set")
        return self.challenger.predict_now(matrix)

    async def _keep(self, records: list[LogRecord]) -> None:
        errors = [e for e in await self.log.record_all(records, self.options.record_timeout_s) if e is not None]
        self.counts["scored"] += len(records) - len(errors)
        self.counts["failed"] += len(errors)
        if errors:
            level = logging.WARNING if isinstance(errors[0], LogUnavailable) else logging.ERROR
            logger.log(level, "%d shadow answers not kept: %s", len(errors), errors[0])


# -- opening it --------------------------------------------------------------------------------------
async def open_shadow(
    settings: Settings, primary: ModelRunner, conninfo: str, registry: CollectorRegistry
) -> Shadow | None:
    """The configured challenger, started; None when none is configured or it cannot be loaded.

    A challenger that cannot be served is logged and left out: the primary serves as it would without one."""
    if settings.shadow_model_dir is None or settings.shadow_sample <= 0:
        return None
    challenger = await _load_challenger(settings, settings.shadow_model_dir, primary)
    if challenger is None:
        return None
    log = PredictionLog(
        conninfo,
        Spool(settings.resolved_spool_dir / "shadow"),
        spool_max_bytes=settings.spool_max_bytes,
        write_timeout_s=settings.db_write_timeout_s,
        connect_timeout_s=settings.db_connect_timeout_s,
        retry_interval_s=settings.db_retry_interval_s,
        batch_max=settings.log_batch_max,
        writers=1,
        table=SHADOW_PREDICTIONS,
    )
    options = ShadowOptions(
        settings.shadow_sample, settings.shadow_source_set, settings.shadow_queue_max, settings.shadow_cpu_share,
        settings.request_timeout_s, settings.shadow_test_slowdown, settings.shadow_test_fail,
    )  # fmt: skip
    shadow = Shadow(challenger, log, primary.manifest.feature_names, options)
    await shadow.start()
    registry.register(ShadowCollector(shadow))
    logger.info("shadow: challenger %s scores %.0f%% of %s requests", challenger.version,
                settings.shadow_sample * 100, ",".join(sorted(options.sources)))  # fmt: skip
    return shadow


async def _load_challenger(settings: Settings, folder: Path, primary: ModelRunner) -> ModelRunner | None:
    try:
        challenger = await asyncio.to_thread(
            ModelRunner.load, folder, settings.shadow_digests, 0.0, settings.engine == "auto"
        )
    except (ArtifactError, ManifestError, OSError) as exc:
        logger.error("no shadow: refusing to load the challenger in %s: %s", folder, exc)
        return None
    if challenger.manifest.feature_names != primary.manifest.feature_names:
        logger.error("no shadow: the challenger in %s takes features %s, the primary %s", folder,
                     challenger.manifest.feature_names, primary.manifest.feature_names)  # fmt: skip
        return None
    return challenger


class ShadowCollector(Collector):
    """The shadow's figures, read at scrape time: `modelship_shadow_copies_total{outcome}` and its queue."""

    def __init__(self, shadow: Shadow) -> None:
        self.shadow = shadow

    def collect(self) -> Iterator[Any]:
        copies = CounterMetricFamily("modelship_shadow_copies", "Copies of requests for the challenger, by outcome "
                                     "(mirrored: queued; dropped: queue full; scored: logged; failed)",
                                     labels=["outcome"])  # fmt: skip
        for outcome in OUTCOMES:
            copies.add_metric([outcome], self.shadow.counts[outcome])
        yield copies
        yield GaugeMetricFamily("modelship_shadow_queue_depth", "Copies waiting for the challenger",
                                value=self.shadow.queue_depth)  # fmt: skip
        info = GaugeMetricFamily("modelship_shadow_model", "The challenger's version (1)", labels=["model_version"])
        info.add_metric([self.shadow.version], 1)
        yield info
