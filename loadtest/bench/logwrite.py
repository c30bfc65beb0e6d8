"""What one group commit of batch rows costs, per way of storing and sending them, against a real Postgres.

`python -m loadtest.bench.logwrite --commits 30` starts the embedded Postgres (pipelines/devtools/embedded_pg.py),
applies the service's migrations, and times `--commits` group commits of 32 request rows, each row
a batch of `--batch` house-price instances, for each variant below. It runs in-process (no HTTP, no
load) and takes a few seconds. Every variant is durable (autocommit, fsync on) and idempotent by
request_id, as the service needs, except the plain COPY, printed as a floor for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from loadtest.checks import random_instance
from loadtest.stats import percentiles
from model.artifact import load_model
from model.train import train
from pipelines.devtools.embedded_pg import EmbeddedPostgres
from service import db
from service.db import LogRecord
from service.validation import values_in_order

GROUP = 32  # rows per group commit, as the writer takes them under load
Writer = Callable[[psycopg.AsyncConnection[Any], list[LogRecord]], Awaitable[None]]
COLUMNS = "request_id, model_version, inputs, outputs, latency_ms, created_at"


async def unnest_service(conn: psycopg.AsyncConnection[Any], records: list[LogRecord]) -> None:
    await db.insert(conn, records)  # what the service runs: text[] parameters in binary (%b)


async def unnest_text(conn: psycopg.AsyncConnection[Any], records: list[LogRecord]) -> None:
    # The same statement with text parameters: every array goes as a literal whose quotes are escaped.
    await conn.execute(_TEXT_INSERT, db.insert_params(records))


_TEXT_INSERT = db.INSERT.replace("%b", "%s")


async def unnest_binary(conn: psycopg.AsyncConnection[Any], records: list[LogRecord]) -> None:
    # jsonb[] sent in psycopg's binary format: saves the text[] escaping, not the server's jsonb parse.
    ids, versions, inputs, outputs, latencies, stamps = db.insert_params(records)
    params = (ids, versions, [Jsonb(v, _as_is) for v in inputs], [Jsonb(v, _as_is) for v in outputs], latencies, stamps)
    async with conn.cursor(binary=True) as cur:
        await cur.execute(_BINARY_INSERT, params)


def _as_is(text: Any) -> str:
    return str(text)  # already JSON text: no second serialisation


_BINARY_INSERT = """
INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms, created_at)
SELECT r, v, i, o, l, to_timestamp(t)
FROM unnest(%s::text[], %s::text[], %s::jsonb[], %s::jsonb[], %s::real[], %s::float8[]) AS u(r, v, i, o, l, t)
ON CONFLICT (request_id) DO NOTHING
"""


async def copy_staged(conn: psycopg.AsyncConnection[Any], records: list[LogRecord]) -> None:
    # COPY cannot say ON CONFLICT DO NOTHING, and a replayed spool or a client's repeated
    # X-Request-ID must not fail the group: COPY into a temporary table, then INSERT ... SELECT.
    async with conn.transaction():
        await conn.execute(_STAGE)
        await _copy(conn, "staged", records)
        await conn.execute(_FROM_STAGED)


async def copy_plain(conn: psycopg.AsyncConnection[Any], records: list[LogRecord]) -> None:
    await _copy(conn, "predictions", records)  # not idempotent: the floor, not an option


_STAGE = """CREATE TEMP TABLE IF NOT EXISTS staged (request_id text, model_version text, inputs jsonb,
outputs jsonb, latency_ms real, created_at timestamptz) ON COMMIT DELETE ROWS"""
_FROM_STAGED = """INSERT INTO predictions (request_id, model_version, inputs, outputs, latency_ms, created_at)
SELECT * FROM staged ON CONFLICT (request_id) DO NOTHING"""


async def _copy(conn: psycopg.AsyncConnection[Any], table: str, records: list[LogRecord]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(COLUMNS))
    async with conn.cursor() as cur, cur.copy(statement) as copy:
        for r in records:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(r.created_at))
            await copy.write_row([r.request_id, r.model_version, r.inputs, r.outputs, r.latency_ms, stamp])


def shapes(model_dir: Path, batch: int) -> dict[str, tuple[str, str]]:
    """The JSON text of one batch row's inputs and outputs, per stored shape."""
    _, manifest = load_model(model_dir)
    rng = random.Random(1)
    instances = [random_instance(manifest, rng) for _ in range(batch)]
    names = manifest.feature_names
    matrix = np.asarray([[i[n] for n in names] for i in instances], dtype=np.float64)
    prediction = np.full(batch, 123456.78)
    numpy = orjson.OPT_SERIALIZE_NUMPY
    return {
        "objects (list of {feature: value})": (
            orjson.dumps(instances).decode(),
            orjson.dumps([{"prediction": 123456.78}] * batch).decode(),
        ),
        "rows ({features, instances: [[..]]})": (
            orjson.dumps({"features": names, "instances": matrix}, option=numpy).decode(),
            orjson.dumps({"prediction": prediction}, option=numpy).decode(),
        ),
        "rows in, columns out (as stored now)": (
            _rows_in(names, instances),
            orjson.dumps({"protocol": "predict", "columns": {"prediction": prediction}}, option=numpy).decode(),
        ),
        "rows in, objects out": (
            _rows_in(names, instances),
            orjson.dumps([{"prediction": 123456.78}] * batch).decode(),
        ),
        "columns ({feature: [..]})": (
            orjson.dumps({n: matrix[:, j].copy() for j, n in enumerate(names)}, option=numpy).decode(),
            orjson.dumps({"prediction": prediction}, option=numpy).decode(),
        ),
    }


async def measure(
    url: str, write: Writer, inputs: str, outputs: str, label: str, commits: int
) -> tuple[list[float], float]:
    """Each commit's wall time, and the client's (this process's) CPU per commit: the service pays that."""
    samples = []
    cpu = 0.0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for n in range(commits):
            records = [LogRecord(f"{label}-{n}-{i}", "v", inputs, outputs, 1.0, time.time()) for i in range(GROUP)]
            began, cpu_began = time.perf_counter(), time.process_time()
            await write(conn, records)
            samples.append(time.perf_counter() - began)
            cpu += time.process_time() - cpu_began
    return samples, cpu / commits


async def run(model_dir: Path, batch: int, commits: int) -> None:
    writers: dict[str, Writer] = {
        "INSERT unnest, binary text[] (service)": unnest_service,
        "INSERT unnest, text[] literals": unnest_text,
        "INSERT unnest binary jsonb[]": unnest_binary,
        "COPY to temp + INSERT ON CONFLICT": copy_staged,
        "plain COPY (floor)": copy_plain,
    }
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        url = pg.start()
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await db.migrate(conn)
            print(f"{GROUP} rows of {batch} instances per group commit, {commits} commits each; ms per commit")
            for shape, (inputs, outputs) in shapes(model_dir, batch).items():
                for how, write in writers.items():
                    samples, cpu = await measure(url, write, inputs, outputs, f"{shape}{how}", commits)
                    median, p90 = percentiles(samples, 0.50, 0.90)
                    print(f"{shape:<38} {how:<40} median {median * 1e3:6.1f}  "
                          f"p90 {p90 * 1e3:6.1f}  client CPU {cpu * 1e3:5.2f}  "
                          f"({len(inputs) + len(outputs)} B JSON/row)")  # fmt: skip
        finally:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(train("house-price", Path(tmp)).path, args.batch, args.commits))


if __name__ == "__main__":
    main()


def _rows_in(names: list[str], instances: list[dict[str, Any]]) -> str:
    """A batch's inputs as the log stores them (service.core.record_of): the client's values in feature order."""
    rows = list(map(values_in_order(names), instances))
    return orjson.dumps({"protocol": "predict", "features": names, "instances": rows}).decode()
