"""Retention of the prediction log: delete rows older than a cutoff in small batches.

`python -m service.retention --older-than-days N --batch M` is the CronJob's entry point (infra/components/specs.py).

Each batch is its own short transaction that locks at most `batch` rows (SKIP LOCKED, so it never
waits on or blocks a writer), walking the primary key. No long lock, no table rewrite.

Why not time partitions (detach and drop a month in O(1))? The log's idempotent replay relies on a
UNIQUE (request_id) constraint, and a unique constraint on a partitioned table must include the
partition key, which would make request_id unique only per partition. Batched deletes keep
exactly-once; at the log's write rate they stay cheap (see tests/service/test_retention.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

# A prediction's labels (POST /feedback) go with it, in the same statement: nothing else deletes them.
DELETE_BATCH = """
WITH doomed AS (
    SELECT id FROM predictions WHERE created_at < %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM predictions p USING doomed WHERE p.id = doomed.id RETURNING p.request_id
), unlabelled AS (
    DELETE FROM labels l USING gone WHERE l.request_id = gone.request_id
)
SELECT count(*) FROM gone
"""
# The challenger's answers (docs/shadow.md) age out with the champion's; the table exists once the service migrated.
SHADOW_DELETE_BATCH = """
WITH doomed AS (
    SELECT id FROM shadow_predictions WHERE created_at < %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM shadow_predictions p USING doomed WHERE p.id = doomed.id RETURNING 1
)
SELECT count(*) FROM gone
"""


@dataclass(frozen=True)
class RetentionResult:
    cutoff: str
    deleted: int
    batches: int
    seconds: float
    longest_batch_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def purge(database_url: str, older_than_days: float, batch: int = 5000, pause_s: float = 0.0) -> RetentionResult:
    """Delete predictions older than `older_than_days`, `batch` rows per transaction.

    Args:
        database_url: the prediction log's database.
        older_than_days: rows with created_at before now minus this many days go.
        batch: most rows per transaction; bounds how long any row lock is held.
        pause_s: sleep between batches, to leave I/O to the service.

    Returns:
        What was deleted, in how many batches, and the longest batch.
    """
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    deleted = batches = 0
    longest = 0.0
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        shadow = conn.execute("SELECT to_regclass('shadow_predictions') IS NOT NULL").fetchone() == (True,)
        statements = [DELETE_BATCH, *([SHADOW_DELETE_BATCH] if shadow else [])]
        while statements:
            began = time.perf_counter()
            row = conn.execute(statements[0], (cutoff, batch)).fetchone()
            count = row[0] if row else 0
            longest = max(longest, time.perf_counter() - began)
            if count <= 0:
                statements.pop(0)
                continue
            deleted += count
            batches += 1
            if pause_s:
                time.sleep(pause_s)
    return RetentionResult(
        cutoff.isoformat(timespec="seconds"),
        deleted,
        batches,
        round(time.perf_counter() - started, 3),
        round(longest * 1000, 1),
    )


def main(argv: list[str] | None = None) -> int:
    """The retention job: purge with DATABASE_URL, print the result as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m service.retention", description=main.__doc__)
    parser.add_argument("--older-than-days", type=float, default=90)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("modelship: DATABASE_URL is required: the database whose prediction log to purge", file=sys.stderr)
        return 2
    result = purge(url, args.older_than_days, batch=args.batch, pause_s=args.pause)
    print(json.dumps(result.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
