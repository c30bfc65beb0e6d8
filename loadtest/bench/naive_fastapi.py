"""Naive FastAPI: the plain server plus one INSERT per request through a psycopg pool, awaited
before answering (durable, but one commit and one WAL flush per request).

    uvicorn loadtest.bench.naive_fastapi:create_app --factory --no-access-log --workers N
"""

# No `from __future__ import annotations`: FastAPI must see the body model built at runtime.
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from loadtest.bench.baseline_model import feature_names, load_artifact
from loadtest.bench.plain_fastapi import instance_model

INSERT = (
    "INSERT INTO bench_naive_predictions (request_id, model_version, inputs, outputs, latency_ms) "
    "VALUES (%s, %s, %s, %s, %s)"
)


def create_app() -> FastAPI:
    model, manifest = load_artifact()
    names = feature_names(manifest)
    version = manifest.version
    Instance = instance_model(manifest)
    pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=4, max_size=16, open=False)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(body: Instance) -> dict[str, Any]:  # type: ignore[valid-type]
        started = time.perf_counter()
        values = body.model_dump()  # type: ignore[attr-defined]
        prediction = float(model.predict(np.array([[values[n] for n in names]], dtype=np.float64))[0])
        request_id = uuid.uuid4().hex
        latency_ms = (time.perf_counter() - started) * 1000
        async with pool.connection() as conn:  # commits when the block exits
            await conn.execute(
                INSERT, (request_id, version, Jsonb(values), Jsonb({"prediction": prediction}), latency_ms)
            )
        return {"prediction": prediction, "input": values, "model_version": version, "request_id": request_id}

    return app
