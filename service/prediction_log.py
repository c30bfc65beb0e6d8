"""The prediction log: group commit to Postgres, an fsync'd spool while it is down, exactly-once replay.

A request calls `await log.record(row)`; it returns only once the row is committed to Postgres or
fsync'd to the spool, so a 2xx always means durable. One writer task takes every row waiting at
that moment and writes them in one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING (one
round trip, idempotent by request_id), so a burst of requests shares one commit.

The log is in one of three modes (`Mode`): DIRECT, records go straight to Postgres; SPOOLING, Postgres
is unreachable and records go to the spool; DRAINING, Postgres answers again and the spool is being
replayed into it, while new records still go to the spool behind the old ones, until it is empty.

Labels (POST /feedback, `service.labels.LabelRecord`) take the same path: queued with the predictions, written in
the same group commit (a second INSERT in the same transaction, only when the group holds labels, so a group of
predictions costs what it did), spooled while Postgres is down, and replayed after the predictions of their chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import psycopg
import psycopg_pool

from service import db
from service.db import LogRecord
from service.errors import DatabaseUnavailable, LogUnavailable
from service.labels import LabelRecord, insert_labels
from service.spool import Spool

logger = logging.getLogger("modelship.prediction_log")
REPLAY_CHUNK = 5000
DB_ERRORS = (psycopg.Error, psycopg_pool.PoolTimeout, OSError, TimeoutError)


class Mode(Enum):
    DIRECT = "direct"
    SPOOLING = "spooling"
    DRAINING = "draining"


@dataclass(slots=True)
class Pending:
    """A record waiting for its group commit, and the request waiting for it to be durable."""

    record: LogRecord | LabelRecord
    durable: asyncio.Future[None]
    since: float  # time.monotonic() when it was queued


class PredictionLog:
    def __init__(
        self,
        conninfo: str,
        spool: Spool,
        *,
        spool_max_bytes: int,
        write_timeout_s: float,
        connect_timeout_s: float,
        retry_interval_s: float,
        batch_max: int,
        writers: int = 2,
        on_commit: Callable[[float, int], None] = lambda seconds, rows: None,
        table: str = db.PREDICTIONS,
    ) -> None:
        self.table = table  # predictions, or the challenger's shadow_predictions (its own log, spool and pool)
        self.spool = spool
        self.spool_max_bytes = spool_max_bytes
        self.write_timeout_s = write_timeout_s
        self.retry_interval_s = retry_interval_s
        self.batch_max = batch_max
        self.writers = writers
        self.on_commit = on_commit  # (seconds, rows) of each committed group, for /metrics
        self.pool = psycopg_pool.AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=writers + 3,  # the writers, recovery, reads (/predictions, /feedback), the live-quality task
            open=False,
            timeout=connect_timeout_s,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout_s))},
        )
        self._pending: deque[Pending] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._spool_lock = asyncio.Lock()
        self._db_confirmed = asyncio.Event()
        self.connect_timeout_s = connect_timeout_s
        self._closing = False
        self.mode = Mode.SPOOLING  # until Postgres is confirmed
        self._spool_bytes = 0
        self._spool_since: float | None = None
        # counters exported by /metrics
        self.write_errors = 0
        self.retries = 0
        self.spooled_records = 0
        self.replayed_records = 0
        self.committed_records = 0
        self.rejected_labels = 0  # labels the commit dropped (service.labels): spooled ones that fail at replay

    @property
    def db_ok(self) -> bool:
        """Writes go straight to Postgres (DIRECT)."""
        return self.mode is Mode.DIRECT

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.pool.open(wait=False)
        self._spool_bytes = self.spool.total_bytes()
        if self._spool_bytes:
            self._spool_since = time.time()
            logger.info("found %d bytes of spooled predictions from an earlier run; replaying", self._spool_bytes)
        self._writer = asyncio.create_task(self._run(), name="prediction-log-writer")
        self._recovery = asyncio.create_task(self._recover_forever(), name="prediction-log-recovery")
        # Give a healthy database the chance to be confirmed before the first request; a down one
        # does not block start-up: records go to the spool until it answers.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._db_confirmed.wait(), self.connect_timeout_s + 1)

    async def close(self, timeout: float) -> None:
        """Flush what is pending (to Postgres, else to the spool), then close the pool."""
        self._closing = True
        self._wakeup.set()
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        if self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout)
            except TimeoutError:
                logger.error(
                    "prediction log did not flush within %.1fs; %d records pending", timeout, len(self._pending)
                )
        self.spool.rotate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.close(), 5)

    # -- the hot path -----------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        if self._closing or self._writer is None or self._writer.done():
            return False
        return self.db_ok or self._spool_bytes < self.spool_max_bytes

    async def record(self, row: LogRecord | LabelRecord, timeout: float) -> None:
        """Return once `row` is durable; raise LogUnavailable when it cannot be kept."""
        if not self.accepting:
            raise LogUnavailable(self.unavailable_reason())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append(Pending(row, future, time.monotonic()))
        self._wakeup.set()
        # One timer, not wait_for(shield(...)): this runs once per request.
        timer = loop.call_later(timeout, _expire, future, timeout)
        try:
            await future
        finally:
            timer.cancel()

    async def record_all(self, rows: list[LogRecord], timeout: float) -> list[BaseException | None]:
        """`record` for many rows at once, each row's error or None once durable (one timer, no task per row)."""
        if not self.accepting:
            return [LogUnavailable(self.unavailable_reason())] * len(rows)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in rows]
        since = time.monotonic()
        self._pending.extend(Pending(row, future, since) for row, future in zip(rows, futures, strict=True))
        self._wakeup.set()
        timer = loop.call_later(timeout, _expire_all, futures, timeout)
        try:
            await asyncio.wait(futures)
        finally:
            timer.cancel()
        return [future.exception() for future in futures]

    def unavailable_reason(self) -> str:
        if self._closing:
            return "the service is shutting down"
        if not self.db_ok and self._spool_bytes >= self.spool_max_bytes:
            return "Postgres is unreachable and the local spool is full"
        return "the prediction log writer is not running"

    # -- reading it back ---------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def reading(self, timeout: float = 2) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection for a read (POST /feedback's checks, the live-quality task); DB_ERRORS when down."""
        async with self.pool.connection(timeout=timeout) as conn:
            yield conn

    async def recent(self, limit: int, before: int | None, source: str | None = None) -> list[dict[str, Any]]:
        """A page of logged predictions, newest first (GET /predictions); a 503 while Postgres is unreachable."""
        try:
            async with self.pool.connection(timeout=2) as conn:
                rows = await db.list_predictions(conn, limit, before, source)
        except DB_ERRORS as exc:
            raise DatabaseUnavailable(f"the prediction log database is unreachable ({type(exc).__name__})") from None
        for row in rows:
            row["created_at"] = row["created_at"].isoformat()
        return rows

    # -- figures for /metrics and /ready ----------------------------------------------------
    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    @property
    def spool_bytes(self) -> int:
        return self._spool_bytes

    def oldest_unflushed_age(self) -> float:
        ages = []
        if self._pending:
            ages.append(time.monotonic() - self._pending[0].since)
        if self._spool_since is not None:
            ages.append(time.time() - self._spool_since)
        return max(ages, default=0.0)

    # -- the writer -------------------------------------------------------------------------
    async def _run(self) -> None:
        # Up to `writers` group commits in flight: a request that arrives while one commit waits for
        # its WAL flush starts the next one instead of queueing behind it.
        inflight: set[asyncio.Task[None]] = set()
        while True:
            if not self._pending:
                if self._closing:
                    if inflight:
                        await asyncio.wait(inflight)
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(inflight) >= self.writers:
                await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                continue
            batch = [self._pending.popleft() for _ in range(min(self.batch_max, len(self._pending)))]
            task = asyncio.create_task(self._persist(batch))
            inflight.add(task)
            task.add_done_callback(inflight.discard)

    async def _persist(self, batch: list[Pending]) -> None:
        rows = [item.record for item in batch]
        error: BaseException | None = None
        if self.mode is Mode.DIRECT:
            try:
                began = time.perf_counter()
                await asyncio.wait_for(self._insert(rows), self.write_timeout_s)
                self.on_commit(time.perf_counter() - began, len(rows))
                self.committed_records += len(rows)
            except DB_ERRORS as exc:
                self._mark_down(exc)
                error = exc
            else:
                _resolve(batch)
                return
        try:
            await self._to_spool(rows)
        except (OSError, LogUnavailable) as exc:
            logger.error("cannot keep %d prediction records: %s", len(rows), exc, extra={"db_error": str(error)})
            failure = exc if isinstance(exc, LogUnavailable) else LogUnavailable(f"local spool write failed: {exc}")
            _resolve(batch, failure)
            return
        _resolve(batch)

    async def _to_spool(self, rows: list[LogRecord | LabelRecord]) -> None:
        if self._spool_bytes >= self.spool_max_bytes:
            raise LogUnavailable("Postgres is unreachable and the local spool is full")
        async with self._spool_lock:
            frames = [row.as_row() if isinstance(row, LogRecord) else row.as_frame() for row in rows]
            written = await asyncio.to_thread(self.spool.append, frames)
        if self._spool_since is None:
            self._spool_since = time.time()
        self._spool_bytes += written
        self.spooled_records += len(rows)

    async def _insert(self, rows: list[LogRecord | LabelRecord]) -> None:
        labels = [row for row in rows if type(row) is LabelRecord]
        async with self.pool.connection() as conn:
            if not labels:  # predictions only: one INSERT, autocommit, as before labels existed
                await db.insert(conn, rows, self.table)  # type: ignore[arg-type]
                return
            predictions = [row for row in rows if type(row) is LogRecord]
            async with conn.transaction():  # predictions first: a label may be for a prediction of this group
                if predictions:
                    await db.insert(conn, predictions, self.table)
                self.rejected_labels += await insert_labels(conn, labels)

    def _mark_down(self, exc: BaseException) -> None:
        self.write_errors += 1
        if self.mode is Mode.DIRECT:
            logger.warning("Postgres write failed (%s: %s); spooling until it is back", type(exc).__name__, exc)
        self.mode = Mode.SPOOLING

    async def _recover_forever(self) -> None:
        pause = {Mode.SPOOLING: self.retry_interval_s, Mode.DRAINING: 0.05, Mode.DIRECT: 0.5}
        while True:
            if self.mode is not Mode.DIRECT:
                await self._recover()
            await asyncio.sleep(pause[self.mode])

    async def _recover(self) -> None:
        """Migrate and replay the spool once Postgres answers; writes switch back when it is empty."""
        try:
            if self.mode is Mode.SPOOLING:
                self.retries += 1
                async with self.pool.connection() as conn:
                    await asyncio.wait_for(db.migrate(conn), self.write_timeout_s * 5)
                self.mode = Mode.DRAINING
            await self._replay()
        except DB_ERRORS as exc:
            self._mark_down(exc)
            return
        async with self._spool_lock:
            self._spool_bytes = self.spool.total_bytes()
            if self._spool_bytes:
                return
            self._spool_since = None
            if self.mode is not Mode.DIRECT:
                logger.info("Postgres is reachable; predictions are logged straight to it")
            self.mode = Mode.DIRECT
            self._db_confirmed.set()

    async def _replay(self) -> None:
        async with self._spool_lock:
            paths = list(self.spool.replayable())  # rotates our own active segment
        for path in paths:
            contents = await asyncio.to_thread(self.spool.read, path)
            for start in range(0, len(contents.records), REPLAY_CHUNK):
                chunk = [_from_frame(row) for row in contents.records[start : start + REPLAY_CHUNK]]
                await asyncio.wait_for(self._insert(chunk), self.write_timeout_s * 5)
            await asyncio.to_thread(self.spool.discard, contents)
            self.replayed_records += len(contents.records)
            logger.info("replayed %d spooled predictions from %s", len(contents.records), path.name)


def _from_frame(frame: list[Any] | dict[str, Any]) -> LogRecord | LabelRecord:
    """A spooled record: a prediction is a positional list (any release's), a label an object."""
    return LabelRecord.from_frame(frame) if isinstance(frame, dict) else LogRecord.from_row(frame)


def _expire(future: asyncio.Future[None], timeout: float) -> None:
    if not future.done():
        future.set_exception(LogUnavailable(f"the prediction log did not confirm durability within {timeout:.0f}s"))


def _expire_all(futures: list[asyncio.Future[None]], timeout: float) -> None:
    for future in futures:
        _expire(future, timeout)


def _resolve(batch: list[Pending], error: BaseException | None = None) -> None:
    for item in batch:
        if item.durable.done():
            continue
        if error is None:
            item.durable.set_result(None)
        else:
            item.durable.set_exception(error)
