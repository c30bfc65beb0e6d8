"""Where batch p99 comes from: GC pauses, the group commit, or event-loop stalls, under a short real load.

`python -m loadtest.bench.batch_p99 --seconds 10` trains the house-price model, starts the embedded
Postgres and one uvicorn worker of the service (a subprocess, uvloop + httptools as in the image),
and drives it with `/predict {"instances": [100 rows]}` from 32 connections (loadgen.py, wrk's
closed loop). Inside the server it records every garbage-collector pause (gc.callbacks) and every
event-loop stall (a 5 ms ticker that wakes late); from /metrics it reads the group-commit histogram.
The service itself now freezes its start-up heap and raises the generation-0 threshold
(service/app.py `_settle_heap`); `--gc cpython-default` undoes both in the server to compare, `--gc freeze-only`
keeps only the freeze. On a shared machine other processes' CPU is noise: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from loadtest.bench.harness import free_port
from loadtest.bench.loadgen import encode_post, run_load
from loadtest.checks import random_instance
from loadtest.launch import launch
from model.artifact import load_model
from model.train import train
from pipelines.devtools.embedded_pg import EmbeddedPostgres

TICK_S = 0.005
STALL_S = 0.010  # a tick this late means the loop was busy (or descheduled) for that long
CPYTHON_THRESHOLDS = (700, 10, 10)


class Probe:
    """GC pauses and loop stalls inside the server process."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self.stalls: list[float] = []
        self._began = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((int(info["generation"]), time.perf_counter() - self._began))

    async def tick(self, stats: Path) -> None:
        # The summary is rewritten every second: uvicorn re-raises SIGTERM once it has shut down,
        # so nothing after serve() is sure to run.
        written = time.perf_counter()
        while True:
            if time.perf_counter() - written > 1:
                await asyncio.to_thread(stats.write_text, json.dumps(self.summary()))
                written = time.perf_counter()
            due = time.perf_counter() + TICK_S
            await asyncio.sleep(TICK_S)
            late = time.perf_counter() - due
            if late > STALL_S:
                self.stalls.append(late)

    def summary(self) -> dict[str, Any]:
        by_gen: dict[str, list[float]] = {}
        for generation, seconds in self.pauses:
            by_gen.setdefault(str(generation), []).append(seconds)
        return {
            "gc": {g: {"count": len(s), "max_ms": max(s) * 1e3, "total_ms": sum(s) * 1e3} for g, s in by_gen.items()},
            "stalls": {"count": len(self.stalls), "max_ms": max(self.stalls, default=0) * 1e3,
                       "total_ms": sum(self.stalls) * 1e3},
        }  # fmt: skip


def serve(port: int, model_dir: Path, database_url: str, data_dir: Path, stats: Path, gc_mode: str) -> None:
    from service.app import create_app
    from service.settings import Settings

    probe = Probe()
    settings = Settings(model_dir=model_dir, database_url=database_url, data_dir=data_dir, access_log=False)
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                            log_level="warning", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)

    async def main() -> None:
        ticker = asyncio.create_task(probe.tick(stats))
        started = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for "listening"
            await asyncio.sleep(0.05)
        if gc_mode != "service":  # undo service.app._settle_heap, all or part
            gc.set_threshold(*CPYTHON_THRESHOLDS)
        if gc_mode == "cpython-default":
            gc.unfreeze()
        gc.callbacks.append(probe.on_gc)
        await started
        ticker.cancel()

    asyncio.run(main())


def commit_figures(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    name = "modelship_prediction_log_commit_seconds"
    buckets = [(float(s.labels["le"]), s.value) for s in samples if s.name == f"{name}_bucket"]
    value = {s.name: s.value for s in samples if not s.labels}
    count = value[f"{name}_count"]
    p99 = next(le for le, c in sorted(buckets) if c >= 0.99 * count)
    return {
        "commits": count,
        "commit_mean_ms": value[f"{name}_sum"] / count * 1e3,
        "commit_p99_le_ms": p99 * 1e3,
        "rows_per_commit": value["modelship_prediction_log_commit_rows_sum"] / count,
    }


def experiment(seconds: float, gc_mode: str, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = train("house-price", root / "artifacts").path
        _, manifest = load_model(model_dir)
        rng = random.Random(7)
        bodies = [orjson.dumps({"instances": [random_instance(manifest, rng) for _ in range(batch)]})
                  for _ in range(16)]  # fmt: skip
        pg = EmbeddedPostgres(root / "pg")
        database_url = pg.start()
        port = free_port()
        stats = root / "stats.json"
        command = [sys.executable, "-m", "loadtest.bench.batch_p99", "--serve", str(port),
                   "--model-dir", str(model_dir), "--database-url", database_url,
                   "--data-dir", str(root / "svc"), "--stats", str(stats)]  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        server = launch([*command, "--gc", gc_mode], url + "/ready", root / "server.log", cwd=Path.cwd(),
                        env=os.environ, timeout_s=120, name="the service")  # fmt: skip
        try:
            requests = [encode_post("127.0.0.1", port, "/predict", b) for b in bodies]
            load = run_load("127.0.0.1", port, requests, connections=32, warmup_s=2, duration_s=seconds,
                            expect=b'"predictions"')  # fmt: skip
            figures = commit_figures(url)
            time.sleep(1.5)  # the server's last summary of the window
        finally:
            server.stop(30)
            pg.stop()
        server_side = json.loads(stats.read_text())
        result = {"gc": gc_mode, "rps": load.rps, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
                  "max_ms": load.max_ms, "errors": load.errors, **figures, "server": server_side}  # fmt: skip
        print(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--gc",
        choices=("service", "freeze-only", "cpython-default"),
        default="service",
        help="the server's collector: as the service sets it, only its freeze, or neither",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.model_dir, args.database_url, args.data_dir, args.stats, args.gc)
    else:
        os.environ.setdefault("PYTHONHASHSEED", "0")
        experiment(args.seconds, args.gc, args.batch)


if __name__ == "__main__":
    main()
