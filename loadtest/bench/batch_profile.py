"""Where a batch request's time goes: per-stage CPU and GC pauses.

`python -m loadtest.bench.batch_profile --seconds 3` runs in-process (no HTTP, no load), so it
takes a few seconds and stays quiet on a shared machine. It prints, for a house-price batch of
100, the median and p99 of each stage of the objects path (/predict) and of the matrix path (v1, v2)
(v2 infer's), and the garbage collector's pauses while doing so. The commit cost of big log rows is
measured by `loadtest.bench.logwrite`, per stored shape and per way of writing.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loadtest.checks import random_instance
from loadtest.stats import percentiles
from model.artifact import load_model
from model.train import train
from service.body import parse
from service.model_runner import ModelRunner
from service.v2_tensors import decode
from service.validation import InstanceValidator

BATCH = 100


def _stats(samples: list[float]) -> str:
    median, p99 = percentiles(samples, 0.50, 0.99)
    return f"median {median * 1e6:7.0f} us  p99 {p99 * 1e6:7.0f} us"


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
    loc = ("body", "instances")
    checked = validator.check_objects(instances, loc, True)
    outputs = predictor.predict_now(checked.matrix)
    matrix = np.asarray(rows, dtype=np.float64)
    stages: dict[str, Callable[[], Any]] = {
        "objects: parse (orjson + duplicate-key check)": lambda: parse(body),
        "objects: validate (matrix built in C + column rules)": lambda: validator.check_objects(instances, loc, True),
        "objects: model call + rounding": lambda: predictor.predict_now(checked.matrix),
        "objects: per-row answer dicts + response JSON": lambda: orjson.dumps(
            [{"prediction": v} for v in outputs.values.tolist()]
        ),
        "matrix: parse + decode v2 tensors": lambda: decode(parse(v2_body), None, validator.names, 1000),
        "matrix: column rules": lambda: validator.check_matrix(matrix, loc),
        "matrix: model call (raw array)": lambda: predictor.compute(matrix),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        profile_stages(train("house-price", Path(tmp)).path, args.seconds)


if __name__ == "__main__":
    main()
