"""Where a batch request's time goes: per-stage CPU, GC pauses, and the commit cost of big log rows.

`python -m loadtest.bench.batch_profile --seconds 3` runs in-process (no HTTP, no load), so it
takes a few seconds and stays quiet on a shared machine. It prints, for a house-price batch of
100, the median and p99 of each stage of /predict's row-by-row path and of the columnar path
(v2 infer's), the garbage collector's pauses while doing so, and how long one group commit of 32
batch rows takes against a real Postgres compared with 32 single-instance rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg

from loadtest.checks import random_instance
from loadtest.embedded_pg import EmbeddedPostgres
from model.artifact import load_model
from model.train import train
from service import db
from service.columnar import check_instances, check_matrix
from service.db import LogRecord
from service.model_runner import ModelRunner
from service.predict_endpoint import parse
from service.v2_tensors import decode
from service.validation import InstanceValidator

BATCH = 100


def _stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1e6:7.0f} us  p99 {p99 * 1e6:7.0f} us"


def _time(stages: dict[str, Callable[[], Any]], seconds: float) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in stages}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name, stage in stages.items():
            started = time.perf_counter()
            stage()
            timings[name].append(time.perf_counter() - started)
    return timings


def profile_stages(model_dir: Path, seconds: float) -> None:
    _, manifest = load_model(model_dir)
    predictor = ModelRunner.load(model_dir, frozenset())
    validator = InstanceValidator(manifest.features, "reject")
    spec = manifest
    rng = random.Random(0)
    instances = [random_instance(spec, rng) for _ in range(BATCH)]
    body = orjson.dumps({"instances": instances})
    rows = [[inst[n] for n in validator.names] for inst in instances]
    tensor = {"name": "input", "datatype": "FP64", "shape": [BATCH, len(rows[0])], "data": rows}
    v2_body = orjson.dumps({"inputs": [tensor]})
    checked = validator.check(instances, ("body", "instances"))
    outputs = predictor.predict_now(np.asarray(checked.rows))
    matrix = np.asarray(rows, dtype=np.float64)
    stages: dict[str, Callable[[], Any]] = {
        "row path: parse (orjson + duplicate-key count)": lambda: parse(body),
        "row path: validate per value": lambda: validator.check(instances, ("body", "instances")),
        "row path: validate column-wise (check_instances)": lambda: check_instances(validator, instances, ("body",)),
        "row path: model call + per-row dicts": lambda: predictor.predict_now(np.asarray(checked.rows)),
        "row path: log row + response JSON": lambda: (orjson.dumps(instances), orjson.dumps(outputs)),
        "columnar: parse + decode to matrix": lambda: decode(parse(v2_body), None, validator.names, 1000),
        "columnar: vectorized checks": lambda: check_matrix(validator, matrix, lambda i, f: ("body", i, f)),
        "columnar: model call (raw array)": lambda: predictor.compute(matrix),
    }
    pauses: list[float] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses.append(time.perf_counter() - started.pop())

    gc.callbacks.append(on_gc)
    try:
        timings = _time(stages, seconds)
    finally:
        gc.callbacks.remove(on_gc)
    for name, samples in timings.items():
        print(f"{name:<50} {_stats(samples)}  (n={len(samples)})")
    if pauses:
        print(f"{'GC pauses during the loop':<50} {_stats(pauses)}  (n={len(pauses)}, max {max(pauses) * 1e6:.0f} us)")


async def _copy(conn: psycopg.AsyncConnection[Any], records: list[LogRecord]) -> None:
    columns = "request_id, model_version, inputs, outputs, latency_ms, created_at"
    async with conn.cursor() as cur, cur.copy(f"COPY predictions ({columns}) FROM STDIN") as copy:
        for r in records:
            row = r.as_row()
            await copy.write_row([*row[:5], time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(r.created_at))])


async def profile_commit(model_dir: Path, rounds: int) -> None:
    _, manifest = load_model(model_dir)
    spec = manifest
    rng = random.Random(1)
    instances = [random_instance(spec, rng) for _ in range(BATCH)]
    names = manifest.feature_names
    row_in = orjson.dumps(instances).decode()
    row_out = orjson.dumps([{"prediction": 123456.78}] * BATCH).decode()
    matrix = np.asarray([[i[n] for n in names] for i in instances], dtype=np.float64)
    col_in = orjson.dumps({"features": names, "instances": matrix}, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    col_out = orjson.dumps({"prediction": np.full(BATCH, 123456.78)}, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    one_in, one_out = orjson.dumps(instances[0]).decode(), '{"prediction": 123456.78}'
    variants = [
        ("single-instance rows, INSERT unnest", one_in, one_out, db.insert),
        ("batch rows as objects, INSERT unnest", row_in, row_out, db.insert),
        ("batch rows as arrays, INSERT unnest", col_in, col_out, db.insert),
        ("batch rows as arrays, COPY", col_in, col_out, _copy),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        url = pg.start()
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await db.migrate(conn)
                for label, inputs, outputs, write in variants:
                    samples = []
                    for r in range(rounds):
                        records = [
                            LogRecord(f"{label}-{r}-{i}", "v", inputs, outputs, 1.0, time.time()) for i in range(32)
                        ]
                        began = time.perf_counter()
                        await write(conn, records)
                        samples.append(time.perf_counter() - began)
                    size = len(inputs) + len(outputs)
                    print(f"{'32 ' + label:<50} {_stats(samples)}  ({size} B of JSON per row)")
        finally:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--only-commits", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = train("house-price", Path(tmp)).path
        if not args.only_commits:
            profile_stages(model_dir, args.seconds)
        asyncio.run(profile_commit(model_dir, args.commits))


if __name__ == "__main__":
    main()
