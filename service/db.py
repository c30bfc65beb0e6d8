"""Schema migrations and queries of the prediction log."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row

logger = logging.getLogger("modelship.db")
MIGRATION_LOCK = 7_461_726_353  # any constant: serialises migrations across replicas

INSERT = """
INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms, created_at)
SELECT r, v, i::jsonb, o::jsonb, l, to_timestamp(t)
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::real[], %s::float8[]) AS u(r, v, i, o, l, t)
ON CONFLICT (request_id) DO NOTHING
"""


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


def insert_params(records: list[list[Any]]) -> tuple[list[Any], ...]:
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    for record in records:
        for column, value in zip(columns, record, strict=True):
            column.append(value)
    return columns


async def insert(conn: psycopg.AsyncConnection[Any], records: list[list[Any]]) -> None:
    await conn.execute(INSERT, insert_params(records))


async def list_predictions(conn: psycopg.AsyncConnection[Any], limit: int, before: int | None) -> list[dict[str, Any]]:
    # One fixed statement: "no cursor" is the largest id, so the plan is the same either way.
    query = (
        "SELECT id, request_id, model_version, inputs, outputs, latency_ms, created_at FROM predictions "
        "WHERE id < %s ORDER BY id DESC LIMIT %s"
    )
    params = (before if before is not None else 2**63 - 1, limit)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()
