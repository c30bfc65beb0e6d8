"""Open Inference Protocol v2 (REST): the routes KServe, MLServer, Triton and Seldon clients call.

Spec: kserve/open-inference-protocol, specification/protocol/inference_rest.md. Infer follows the
same rules as /predict: the `predict` scope, the manifest's feature schema and range policy
(vectorized in `service.columnar`), one model call, and a 2xx only once the request's one
prediction-log row is durable. Errors use the spec's body, `{"error": "<message>"}` (plus
`details` naming each field), with 400 for anything wrong in the request and 404 for a model name
or version that is not loaded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from importlib import metadata
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from service.auth import require_scope
from service.columnar import check_matrix
from service.db import LogRecord
from service.errors import MalformedJSON, NotReady, ServiceError, UnsupportedMediaType
from service.model_runner import ModelRunner
from service.predict_endpoint import parse, read_body
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
from service.v2_tensors import Request as InferRequest
from service.v2_tensors import bad, decode

JSON_MEDIA = frozenset({"", "application/json", "application/octet-stream"})
NUMPY = orjson.OPT_SERIALIZE_NUMPY


class ModelNotFound(ServiceError):
    status, code = 404, "model_not_found"


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=NUMPY), status_code=status, media_type="application/json")


def error_body(exc: ServiceError) -> tuple[int, bytes]:
    """The spec's status and error object; a 422 of the shared validation is the spec's 400 here."""
    body: dict[str, Any] = {"error": exc.message}
    if exc.details:
        body["details"] = exc.details
    return 400 if exc.status == 422 else exc.status, orjson.dumps(body)


def error_response(exc: ServiceError) -> Response:
    """`error_body` as a FastAPI response, with the error's headers (WWW-Authenticate, Retry-After)."""
    status, body = error_body(exc)
    return Response(body, status_code=status, media_type="application/json", headers=exc.headers)


class V2Route(APIRoute):
    """A v2 route answers every ServiceError, its declared key check's included, with the spec's error body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_in_v2_terms(request: Request) -> Response:
            try:
                return await handle(request)
            except ServiceError as exc:
                return error_response(exc)

        return handle_in_v2_terms


router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"], route_class=V2Route)
READ, PREDICT = [require_scope("read")], [require_scope("predict")]


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.modelship
    return state


def _loaded(state: AppState, name: str, version: str | None) -> ModelRunner:
    predictor = state.predictor
    if predictor is None:
        raise NotReady("the model is not loaded yet")
    served = predictor.manifest.name
    if name != served or version not in (None, predictor.version):
        asked = f"model {name!r}" + (f" version {version!r}" if version is not None else "")
        raise ModelNotFound(f"{asked} is not loaded; this server serves model {served!r} version "
                            f"{predictor.version!r}")  # fmt: skip
    return predictor


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
    ok = state.predictor is not None and bool(state.log and state.log.accepting)
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


@router.post("/models/{name}/infer", dependencies=PREDICT, responses=INFER_RESPONSES, openapi_extra=INFER_REQUEST,
             summary="Infer")  # fmt: skip
async def model_infer(request: Request, name: str) -> Response:
    """One [N, n_features] tensor, or one [N] tensor per feature. A 2xx means the request is durably logged."""
    return await _infer_route(request, name, None)


@router.post("/models/{name}/versions/{version}/infer", dependencies=PREDICT, responses=INFER_RESPONSES,
             openapi_extra=INFER_REQUEST, summary="Infer, one version")  # fmt: skip
async def model_version_infer(request: Request, name: str, version: str) -> Response:
    """One [N, n_features] tensor, or one [N] tensor per feature. A 2xx means the request is durably logged."""
    return await _infer_route(request, name, version)


def _metadata(request: Request, name: str, version: str | None) -> Response:
    return _json(model_metadata_body(_loaded(_state(request), name, version)))


def _ready(request: Request, name: str, version: str | None) -> Response:
    state = _state(request)
    predictor = _loaded(state, name, version)
    ok = bool(state.log and state.log.accepting)
    return _json({"name": predictor.manifest.name, "ready": ok}, 200 if ok else 503)


async def _infer_route(request: Request, name: str, version: str | None) -> Response:
    started = time.perf_counter()
    request_id: str = request.scope["state"]["request_id"]
    body = await infer(_state(request), request.headers, request.stream(), name, version, request_id, started)
    return Response(body, media_type="application/json")


def model_metadata_body(predictor: ModelRunner) -> dict[str, Any]:
    features = predictor.manifest.features
    inputs = [{"name": f.name, "datatype": "INT64" if f.type == "integer" else "FP64", "shape": [-1]}
              for f in features]  # fmt: skip
    return {
        "name": predictor.manifest.name,
        "versions": [predictor.version],
        "platform": "sklearn_joblib",
        "inputs": inputs,
        "outputs": [{"name": n, "datatype": t, "shape": s} for n, (t, s) in _output_specs(predictor).items()],
    }


def _output_specs(predictor: ModelRunner) -> dict[str, tuple[str, list[int]]]:
    if predictor.task != "classification":
        return {"prediction": ("FP64", [-1])}
    classes = np.asarray(predictor.estimator.classes_)
    kind = "INT64" if classes.dtype.kind in "iu" else "BYTES"
    return {"prediction": (kind, [-1]), "label": ("BYTES", [-1]), "probabilities": ("FP64", [-1, len(classes)])}


async def infer(
    state: AppState,
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
    name: str,
    version: str | None,
    request_id: str,
    started: float,
) -> bytes:
    """Answer one infer request: JSON bytes of a 200, or a ServiceError naming what was wrong.

    The FastAPI routes and `V2InferEndpoint` (service/v2_endpoint.py) both call this. The API key is
    checked before, by the route's declared dependency or by the endpoint with the same scopes."""
    predictor, validator, log = _loaded(state, name, version), state.validator, state.log
    if validator is None or log is None:
        raise NotReady("the prediction log is not open yet")
    payload, binary = await _read(state, headers, chunks)
    asked = decode(payload, binary, validator.names, state.settings.max_batch)
    warnings = check_matrix(validator, asked.matrix, lambda i, field: ("body", "instances", i, field))
    outputs = _outputs(predictor, predictor.compute(asked.matrix), asked.outputs)
    state.count_predictions(len(asked.matrix))
    parameters: dict[str, Any] = {"request_id": request_id}
    if warnings:
        parameters["warnings"] = "; ".join(warnings)
    answer = {"model_name": predictor.manifest.name, "model_version": predictor.version,
              "id": asked.id if asked.id is not None else request_id, "parameters": parameters,
              "outputs": [{"name": n, "datatype": t, "shape": shape, "data": data}
                          for n, (t, shape, data) in outputs.items()]}  # fmt: skip
    row = LogRecord(request_id, predictor.version, _logged_inputs(asked, validator.names),
                    orjson.dumps({n: data for n, (_, _, data) in outputs.items()}, option=NUMPY).decode(),
                    (time.perf_counter() - started) * 1000, time.time())  # fmt: skip
    await log.record(row, state.settings.request_timeout_s)
    return orjson.dumps(answer, option=NUMPY)


async def _read(
    state: AppState, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
) -> tuple[Any, memoryview | None]:
    # tritonclient sends no Content-Type at all, and binary tensors as application/octet-stream.
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in JSON_MEDIA and not media.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {media!r}")
    body = await read_body({**headers, "content-type": "application/json"}, chunks, state.settings.max_body_bytes)
    header_length = headers.get("inference-header-content-length")
    if header_length is None:
        return parse(body), None
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise MalformedJSON(f"Inference-Header-Content-Length must be 1 to {len(body)}, got {header_length!r}")
    return parse(body[: int(header_length)]), memoryview(body)[int(header_length) :]


Tensor = tuple[str, list[int], Any]  # datatype, shape, flat data (a numeric array or a list of labels)


def _outputs(predictor: ModelRunner, raw: np.ndarray, asked: list[str] | None) -> dict[str, Tensor]:
    specs = _output_specs(predictor)
    unknown = [n for n in asked or [] if n not in specs]
    if unknown:
        raise bad(f"unknown outputs {unknown}; this model has {list(specs)}", "body.outputs")
    if predictor.task != "classification":
        arrays = {"prediction": np.asarray(raw, dtype=np.float64)}
    else:
        best = raw.argmax(axis=1)
        names = predictor.classes or [str(c) for c in predictor.estimator.classes_]
        arrays = {
            "prediction": np.asarray(predictor.estimator.classes_)[best],
            "label": np.asarray(names, dtype=object)[best],
            "probabilities": np.asarray(raw, dtype=np.float64),
        }
    return {n: (specs[n][0], list(arrays[n].shape), _flat(arrays[n])) for n in (asked or specs)}


def _flat(array: np.ndarray) -> Any:
    # orjson writes C-contiguous numeric arrays natively; labels go as a list of strings.
    if array.dtype.kind in "OUS":
        return [str(v) for v in array.reshape(-1).tolist()]
    return np.ascontiguousarray(array.reshape(-1), dtype=np.int64 if array.dtype.kind in "iub" else np.float64)


def _logged_inputs(asked: InferRequest, names: list[str]) -> str:
    logged = {"protocol": "v2", "id": asked.id, "features": names, "instances": asked.matrix}
    return orjson.dumps(logged, option=NUMPY).decode()
