"""CPU per request of one route, in-process: the service's ASGI app called directly, no HTTP, no load.

`python -m loadtest.bench.asgi_cpu --calls 640 --rounds 5` trains house-price (or reuses it), starts an embedded
PostgreSQL (or uses DATABASE_URL), runs the app's lifespan, and calls v2 infer, v1 and /predict with a
batch of 100 and /predict with one instance, each through its pure-ASGI fast path (marked `bench`, and unmarked:
`live`, so the drift counters count it) and through its FastAPI route (the fast path taken out of the middleware
stack, as the service was before it had one). It prints the median
process CPU of one call made alone (the prediction log commits each request by itself) and the
process CPU per request of the same calls made 32 at a time (group commits carry several rows).
Postgres's own CPU is not in these figures. No timed asserts anywhere: this only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator, MutableMapping
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI

from loadtest.checks import random_instance
from model.artifact import load_model
from model.train import train
from pipelines.devtools.embedded_pg import EmbeddedPostgres
from service.app import create_app
from service.settings import Settings
from service.sources import BENCH, SOURCE_HEADER

BATCH, CONCURRENCY = 100, 32


async def call(app: FastAPI, path: str, body: bytes, source: str | None = BENCH) -> int:
    """One request straight into the ASGI app (marked SOURCE; None sends no header: live); returns the status."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(SOURCE_HEADER.lower().encode(), source.encode())] if source else []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}  # fmt: skip
    sent, status = False, 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # as a server does: no disconnect while the request is served
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def alone(app: FastAPI, path: str, body: bytes, calls: int, source: str | None = BENCH) -> list[float]:
    """CPU seconds of each of `calls` calls made one after another."""
    samples = []
    for _ in range(calls):
        started = time.process_time()
        status = await call(app, path, body, source)
        samples.append(time.process_time() - started)
        assert status == 200, status
    return samples


async def together(app: FastAPI, path: str, body: bytes, calls: int, source: str | None = BENCH) -> float:
    """CPU seconds per call of `calls` calls made CONCURRENCY at a time."""
    started, made = time.process_time(), 0
    while made < calls:
        statuses = await asyncio.gather(*(call(app, path, body, source) for _ in range(CONCURRENCY)))
        assert set(statuses) == {200}, statuses
        made += CONCURRENCY
    return (time.process_time() - started) / made


def bodies(model_dir: Path) -> dict[str, tuple[str, bytes]]:
    _, manifest = load_model(model_dir)
    rng = random.Random(0)
    instances = [random_instance(manifest, rng) for _ in range(BATCH)]
    names = [f.name for f in manifest.features]
    data = [float(instance[n]) for instance in instances for n in names]
    tensor = {"name": "input", "shape": [BATCH, len(names)], "datatype": "FP64", "data": data}
    return {
        "v2 infer": (f"/v2/models/{manifest.name}/infer", orjson.dumps({"inputs": [tensor]})),
        "/predict": ("/predict", orjson.dumps({"instances": instances})),
        "v1 predict": (
            f"/v1/models/{manifest.name}:predict",
            orjson.dumps({"instances": [[i[n] for n in names] for i in instances]}),
        ),
        "/predict 1": ("/predict", orjson.dumps(instances[0])),
    }


def build(model_dir: Path, database_url: str, folder: Path, fast: bool) -> FastAPI:
    settings = Settings(model_dir=model_dir, database_url=database_url, data_dir=folder,
                        spool_dir=folder / f"spool-{fast}", access_log=False)  # fmt: skip
    return create_app(settings, fast_paths=fast)  # without: the FastAPI routes and middleware answer


# How each way calls: which app, and the source it marks its requests with (live: no header, drift counted).
WAYS = {"fast path": ("fast path", BENCH), "fast path, live": ("fast path", None), "FastAPI route": ("FastAPI", BENCH)}


async def run(model_dir: Path, database_url: str, folder: Path, calls: int, rounds: int) -> None:
    """Rounds interleave the (route, way) pairs, so a busy neighbour on the machine slows each alike."""
    built = {"fast path": build(model_dir, database_url, folder, True),
             "FastAPI": build(model_dir, database_url, folder, False)}  # fmt: skip
    apps = {way: (built[app], source) for way, (app, source) in WAYS.items()}
    pairs = [(case, way) for case in bodies(model_dir) for way in apps]
    samples: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    shared: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    cases = bodies(model_dir)
    async with AsyncExitStack() as stack:
        for app in built.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for case, way in pairs:  # warm-up: caches, the log's connections, the model's first calls
            await alone(apps[way][0], *cases[case], 20, apps[way][1])
        for _ in range(rounds):
            for case, way in pairs:
                app, source = apps[way]
                samples[(case, way)] += await alone(app, *cases[case], calls // rounds, source)
                shared[(case, way)].append(await together(app, *cases[case], calls // rounds, source))
    for case, way in pairs:
        rows = 1 if case.endswith(" 1") else BATCH
        print(f"{case:10} rows {rows:3}  {way:15}  alone: median {statistics.median(samples[(case, way)]) * 1e6:5.0f} "
              f"us CPU/request   {CONCURRENCY} in flight: median of rounds "
              f"{statistics.median(shared[(case, way)]) * 1e6:5.0f} us CPU/request")  # fmt: skip


@contextmanager
def database(folder: Path) -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    server = EmbeddedPostgres(folder / "pg")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=640, help="calls per route and way, each way (default 640)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = train("house-price", folder / "artifacts").path
        with database(folder) as url:
            asyncio.run(run(model_dir, url, folder, args.calls, args.rounds))


if __name__ == "__main__":
    main()
