"""Plain FastAPI, no database: the same model and predict as the service, a pydantic body, a dict back.

uvicorn loadtest.bench.plain_fastapi:create_app --factory --no-access-log --workers N
"""

# No `from __future__ import annotations`: FastAPI must see the body model built at runtime.
import uuid
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, create_model

from loadtest.bench.baseline_model import feature_names, load_artifact
from model.manifest import Manifest


def instance_model(manifest: Manifest) -> type[BaseModel]:
    """The request body as a pydantic model built from the manifest's features."""
    fields: dict[str, Any] = {f.name: (int if f.type == "integer" else float, ...) for f in manifest.features}
    return create_model("Instance", **fields)


def create_app() -> FastAPI:
    model, manifest = load_artifact()
    names = feature_names(manifest)
    version = manifest.version
    Instance = instance_model(manifest)
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(body: Instance) -> dict[str, Any]:  # type: ignore[valid-type]
        values = body.model_dump()  # type: ignore[attr-defined]
        prediction = float(model.predict(np.array([[values[n] for n in names]], dtype=np.float64))[0])
        request_id = uuid.uuid4().hex
        return {"prediction": prediction, "input": values, "model_version": version, "request_id": request_id}

    return app
