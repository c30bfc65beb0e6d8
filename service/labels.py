"""The `labels` table: ground truth sent to POST /feedback, one row per instance of a logged prediction.

A label rides the prediction log's durable path (`PredictionLog.record`): the same group commit as predictions,
and the same spool while Postgres is down. In a spool frame a prediction is a positional list
(`LogRecord.as_row`); a label is a JSON object with `"kind": "label"`, so frames written before labels existed
read as they always did.

`INSERT_LABELS` checks what POST /feedback checks against Postgres before it answers: the request_id is a
logged prediction, the index is one of its instances, and no other label is stored for it. A spooled label
(acknowledged with a 202, unchecked) that fails them at replay is dropped, and counted: the statement returns
how many it dropped, so one bad label never fails the commit it shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

LABEL_KIND = "label"

# How many instances a stored prediction holds: a batch's columns, an earlier release's list of objects, or one.
INSTANCES = """CASE
    WHEN p.outputs ? 'columns' THEN jsonb_array_length(p.outputs -> 'columns' -> 'prediction')
    WHEN jsonb_typeof(p.outputs) = 'array' THEN jsonb_array_length(p.outputs)
    ELSE 1 END"""

# Whether a classifier answered it (its outputs carry classes or probabilities), whatever the model version.
CLASSIFIED = """COALESCE(p.outputs ? 'classes' OR p.outputs ? 'probabilities'
    OR (p.outputs -> 0) ? 'probabilities', false)"""

# The f-strings below join this module's own SQL fragments: no input reaches them (S608 / B608).
INSERT_LABELS = f"""
WITH u AS (
    SELECT * FROM unnest(%b::text[], %b::int[], %b::text[], %b::float8[]) AS u(r, i, l, t)
), ins AS (
    INSERT INTO labels (request_id, index, label, created_at)
    SELECT u.r, u.i, u.l::jsonb, to_timestamp(u.t) FROM u JOIN predictions p ON p.request_id = u.r
    WHERE u.i < {INSTANCES}
    ON CONFLICT (request_id, index) DO NOTHING
    RETURNING request_id, index, label
)
SELECT count(*) FROM u
WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.request_id = u.r AND ins.index = u.i AND ins.label = u.l::jsonb)
  AND NOT EXISTS (SELECT 1 FROM labels s WHERE s.request_id = u.r AND s.index = u.i AND s.label = u.l::jsonb)
"""  # noqa: S608  # nosec B608

LOOKUP = f"""
SELECT u.r, u.i, p.id IS NOT NULL, p.model_version, {INSTANCES}, {CLASSIFIED}, s.label
FROM unnest(%s::text[], %s::int[]) AS u(r, i)
LEFT JOIN predictions p ON p.request_id = u.r
LEFT JOIN labels s ON s.request_id = u.r AND s.index = u.i
"""  # noqa: S608  # nosec B608


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One label as the log writes it: `label` is JSON text (a number or a class name)."""

    request_id: str
    index: int
    label: str
    created_at: float  # seconds since the epoch

    def as_frame(self) -> dict[str, Any]:
        """The spool's form: an object, where a prediction is a list (LogRecord.as_row)."""
        return {"kind": LABEL_KIND, "request_id": self.request_id, "index": self.index, "label": self.label,
                "created_at": self.created_at}  # fmt: skip

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> LabelRecord:
        return cls(frame["request_id"], frame["index"], frame["label"], frame["created_at"])


@dataclass(frozen=True, slots=True)
class Found:
    """What Postgres holds for one (request_id, index) a body labels."""

    request_id: str
    index: int
    logged: bool  # a prediction with this request_id is in the log
    model_version: str | None
    instances: int  # how many instances it held
    classified: bool  # a classifier answered it
    label: Any  # the label already stored for it, or None


async def insert_labels(conn: psycopg.AsyncConnection[Any], labels: list[LabelRecord]) -> int:
    """Insert the labels that pass the checks; return how many were dropped (unknown, out of range, conflicting)."""
    params = ([x.request_id for x in labels], [x.index for x in labels], [x.label for x in labels],
              [x.created_at for x in labels])  # fmt: skip
    cur = await conn.execute(INSERT_LABELS, params)
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def lookup(conn: psycopg.AsyncConnection[Any], keys: list[tuple[str, int]]) -> dict[tuple[str, int], Found]:
    """The prediction and the stored label of each (request_id, index), in one round trip."""
    cur = await conn.execute(LOOKUP, ([k[0] for k in keys], [k[1] for k in keys]))
    return {(row[0], row[1]): Found(*row) for row in await cur.fetchall()}
