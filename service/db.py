"""Schema migrations and queries of the prediction log.

A batch (of any protocol: `predict`, `v1`, `v2`) is one row whose inputs are rows in the manifest's
feature order, `{"protocol": "predict", "features": [...], "instances": [[...], ...]}` (v2 adds its
request `id`), and whose outputs are one array per output name, `{"protocol": "predict", "columns":
{"prediction": [...]}}`, not lists of `{name: value}` objects; a classifier's adds `"classes"` and its
`probabilities` column holds one row per instance in that order (`service.core.record_of` writes them).
`python -m loadtest.bench.logwrite --commits 30` (embedded Postgres, 32 rows of 100 house-price
instances per group commit, on a shared 2-core machine) gave a median of 65-110 ms per commit for
objects in and out, 35-57 ms for rows in with objects out, and 16 ms for rows in with columns out.
Once the values are arrays, binary jsonb[] parameters and COPY (through a temporary table, because
COPY cannot skip a repeated request_id) save 0-5 ms more, so the writer keeps its one INSERT. Its
parameters go in binary (`%b`): a text array literal must escape every quote of every JSON document,
which cost the service 3.2-4.1 ms of CPU per 32-row commit; binary costs 1.1 ms, and the commit's
wall time fell from 13-16 ms to 11 ms (the measurement is in `loadtest.bench.logwrite`).
GET /predictions turns a stored batch back into objects (`readable_inputs`, `readable_outputs`), so
its answer is unchanged, and rows written before this shape need no migration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row

logger = logging.getLogger("modelship.db")
MIGRATION_LOCK = 7_461_726_353  # any constant: serialises migrations across replicas

INSERT = """
INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms, created_at, source)
SELECT r, v, i::jsonb, o::jsonb, l, to_timestamp(t), s
FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::real[], %b::float8[], %b::text[])
    AS u(r, v, i, o, l, t, s)
ON CONFLICT (request_id) DO NOTHING
"""
# The challenger's answers (docs/shadow.md): the same columns, keyed by the primary's request_id, so a replayed
# spool stays idempotent in both tables and neither row can hide the other.
PREDICTIONS, SHADOW_PREDICTIONS = "predictions", "shadow_predictions"
INSERTS = {PREDICTIONS: INSERT, SHADOW_PREDICTIONS: INSERT.replace(PREDICTIONS, SHADOW_PREDICTIONS, 1)}


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One row of the prediction log: one request, however many instances it held.

    `inputs` and `outputs` are JSON text, serialised once by the producer (orjson) and cast to jsonb
    by Postgres. A batch's values are stored as arrays (`batch_inputs`, `batch_outputs`; the module
    docstring says why).
    """

    request_id: str
    model_version: str
    inputs: str
    outputs: str
    latency_ms: float
    created_at: float  # seconds since the epoch
    source: str = "live"  # X-Modelship-Source; `live` for a user's request

    def as_row(self) -> list[Any]:
        """The spool's frame format: a positional list, as earlier releases wrote it, with the source last."""
        return [self.request_id, self.model_version, self.inputs, self.outputs, self.latency_ms, self.created_at,
                self.source]  # fmt: skip

    @classmethod
    def from_row(cls, row: list[Any]) -> LogRecord:
        """A spooled frame; one written before sources were kept (six fields) was live traffic."""
        return cls(*row)


BATCH_PROTOCOLS = frozenset({"predict", "v1", "v2"})


def readable_outputs(outputs: Any) -> Any:
    """Stored outputs as GET /predictions answers them: a batch as a list of objects, one per instance."""
    if isinstance(outputs, dict) and outputs.get("protocol") in BATCH_PROTOCOLS and "columns" in outputs:
        columns = dict(outputs["columns"])
        classes = outputs.get("classes")
        if classes is not None and "probabilities" in columns:  # rows of probabilities, in the classes' order
            columns["probabilities"] = [dict(zip(classes, row, strict=True)) for row in columns["probabilities"]]
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return outputs  # a single instance, or a row written before batches were stored as columns


def readable_inputs(inputs: Any) -> Any:
    """Stored inputs as GET /predictions answers them: a batch as a list of objects, one per instance."""
    if isinstance(inputs, dict) and inputs.get("protocol") in BATCH_PROTOCOLS and "features" in inputs:
        names = inputs["features"]
        return [dict(zip(names, row, strict=True)) for row in inputs["instances"]]
    return inputs  # a single instance, or a batch row written before rows were stored


def migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("service") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply pending migrations in one transaction; safe to run from many replicas at once."""
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for number, name, sql in migrations():
            if number in done:
                continue
            await conn.execute(sql.encode())
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name))
            applied_now.append(name)
    if applied_now:
        logger.info("applied migrations %s", applied_now)
    return applied_now


def insert_params(records: list[LogRecord]) -> tuple[list[Any], ...]:
    """The INSERT's seven arrays, one per column: unnest turns them back into rows in one round trip."""
    return (
        [r.request_id for r in records],
        [r.model_version for r in records],
        [r.inputs for r in records],
        [r.outputs for r in records],
        [r.latency_ms for r in records],
        [r.created_at for r in records],
        [r.source for r in records],
    )


async def insert(conn: psycopg.AsyncConnection[Any], records: list[LogRecord], table: str = PREDICTIONS) -> None:
    await conn.execute(INSERTS[table], insert_params(records))


async def list_predictions(
    conn: psycopg.AsyncConnection[Any], limit: int, before: int | None, source: str | None = None
) -> list[dict[str, Any]]:
    # One fixed statement: "no cursor" is the largest id, and no source is any source, so the plan is the same.
    query = (
        "SELECT id, request_id, model_version, source, inputs, outputs, latency_ms, created_at FROM predictions "
        "WHERE id < %s AND (%s::text IS NULL OR source = %s::text) ORDER BY id DESC LIMIT %s"
    )
    params = (before if before is not None else 2**63 - 1, source, source, limit)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    for row in rows:
        row["inputs"] = readable_inputs(row["inputs"])
        row["outputs"] = readable_outputs(row["outputs"])
    return rows
