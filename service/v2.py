"""Open Inference Protocol v2 (REST): the routes KServe, MLServer, Triton and Seldon clients call.

Spec: kserve/open-inference-protocol, specification/protocol/inference_rest.md. Infer is answered by the
core through the v2 protocol (`service.protocols.v2`), on the fast path or through the routes here,
which document it; metadata and readiness are answered here. Every error, the routes' declared key
checks included, has the spec's body (`service.protocols.common.kserve_error`).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.auth import require_scope
from service.core import require_serving
from service.model_runner import ModelRunner
from service.protocols import V2, V2_INFER, V2_INFER_VERSION
from service.protocols.common import loaded
from service.protocols.v2 import output_specs
from service.routing import answer_route, protocol_route
from service.state import AppState
from service.v2_schemas import (
    ERRORS,
    INFER_REQUEST,
    INFER_RESPONSES,
    READY_RESPONSES,
    MetadataModel,
    MetadataServer,
    ModelReady,
    ServerLive,
)

NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=NUMPY), status_code=status, media_type="application/json")


router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"], route_class=protocol_route(V2))
READ, PREDICT = [require_scope("read")], [require_scope("predict")]


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.modelship
    return state


def _loaded(state: AppState, name: str, version: str | None) -> ModelRunner:
    return loaded(require_serving(state.serving), name, version)


@router.get("", response_model=MetadataServer, summary="Server metadata")
async def server_metadata() -> Response:
    """The server's name, version and protocol extensions."""
    return _json({"name": "modelship", "version": metadata.version("modelship"), "extensions": []})


@router.get("/health/live", response_model=ServerLive, summary="Server live")
async def server_live() -> Response:
    """Liveness: the process answers."""
    return _json({"live": True})


@router.get("/health/ready", responses={503: {"model": ModelReady}}, response_model=ModelReady, summary="Server ready")
async def server_ready(request: Request) -> Response:
    """Readiness: the model is loaded and the prediction log accepts records, as GET /ready."""
    state = _state(request)
    ok = state.readiness()[0]
    return _json({"name": state.predictor.manifest.name if state.predictor else "", "ready": ok}, 200 if ok else 503)


@router.get("/models/{name}", dependencies=READ, response_model=MetadataModel, responses=ERRORS,
            summary="Model metadata")  # fmt: skip
async def model_metadata(request: Request, name: str) -> Response:
    """The model's input and output tensors, from its manifest's feature schema."""
    return _metadata(request, name, None)


@router.get("/models/{name}/versions/{version}", dependencies=READ, response_model=MetadataModel,
            responses=ERRORS, summary="Model metadata, one version")  # fmt: skip
async def model_version_metadata(request: Request, name: str, version: str) -> Response:
    """The model's input and output tensors, from its manifest's feature schema."""
    return _metadata(request, name, version)


@router.get("/models/{name}/ready", response_model=ModelReady, responses=READY_RESPONSES, summary="Model ready")
async def model_ready(request: Request, name: str) -> Response:
    """200 with ready=true once the model can answer and log; 503 with ready=false before."""
    return _ready(request, name, None)


@router.get("/models/{name}/versions/{version}/ready", response_model=ModelReady, responses=READY_RESPONSES,
            summary="Model ready, one version")  # fmt: skip
async def model_version_ready(request: Request, name: str, version: str) -> Response:
    """200 with ready=true once the model can answer and log; 503 with ready=false before."""
    return _ready(request, name, version)


@router.post(V2_INFER.removeprefix("/v2"), dependencies=PREDICT, responses=INFER_RESPONSES, openapi_extra=INFER_REQUEST,
             summary="Infer")  # fmt: skip
async def model_infer(request: Request, name: str) -> Response:
    """One [N, n_features] tensor, or one [N] tensor per feature. A 2xx means the request is durably logged."""
    return await answer_route(request, V2, {"name": name})


@router.post(V2_INFER_VERSION.removeprefix("/v2"), dependencies=PREDICT, responses=INFER_RESPONSES,
             openapi_extra=INFER_REQUEST, summary="Infer, one version")  # fmt: skip
async def model_version_infer(request: Request, name: str, version: str) -> Response:
    """One [N, n_features] tensor, or one [N] tensor per feature. A 2xx means the request is durably logged."""
    return await answer_route(request, V2, {"name": name, "version": version})


def _metadata(request: Request, name: str, version: str | None) -> Response:
    return _json(model_metadata_body(_loaded(_state(request), name, version)))


def _ready(request: Request, name: str, version: str | None) -> Response:
    state = _state(request)
    predictor = _loaded(state, name, version)
    ok = state.readiness()[0]
    return _json({"name": predictor.manifest.name, "ready": ok}, 200 if ok else 503)


def model_metadata_body(predictor: ModelRunner) -> dict[str, Any]:
    features = predictor.manifest.features
    inputs = [{"name": f.name, "datatype": "INT64" if f.type == "integer" else "FP64", "shape": [-1]}
              for f in features]  # fmt: skip
    return {
        "name": predictor.manifest.name,
        "versions": [predictor.version],
        "platform": "sklearn_joblib",
        "inputs": inputs,
        "outputs": [{"name": n, "datatype": t, "shape": s} for n, (t, s) in output_specs(predictor).items()],
    }
