"""The HTTP routes of modelship's own API. /predict is answered by the core (`service.core`), through the fast
path or this route, which documents it; its body is parsed by the protocol, never by FastAPI, so every
malformed body gets a clear 4xx rather than a framework default."""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import BaseRoute

from service.auth import require_scope, scopes_of
from service.core import answer, require_serving
from service.errors import NotReady
from service.protocols import PREDICT, PREDICT_PATH
from service.schemas import (
    ErrorResponse,
    HealthResponse,
    PredictionsPage,
    PredictResult,
    ReadyResponse,
)
from service.sources import SOURCE
from service.state import AppState

router = APIRouter()
MAX_PAGE = 1000


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed JSON or a bad header",
        401: "Missing or invalid API key",
        403: "API key lacks the scope",
        413: "Request body too large",
        415: "Content-Type is not application/json",
        422: "The body or a parameter is invalid; `details` names each field",
        503: "Not ready, or the prediction cannot be made durable (see Retry-After)",
    }
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.modelship
    return state


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


@router.get("/", summary="What this API is, with links")
async def index(request: Request) -> dict[str, Any]:
    """A short description of the API and its routes."""
    state = _state(request)
    return {
        "name": "modelship",
        "description": "Predictions from a versioned scikit-learn model; every answer is logged to PostgreSQL.",
        "model_version": state.model_version,
        "endpoints": _endpoints(request.app.routes),
        "docs": "/docs",
        "openapi": "/openapi.json",
    }


def _endpoints(routes: list[BaseRoute]) -> dict[str, str]:
    """`METHOD /path` -> its summary (and the key scope it declares), for every documented route."""
    endpoints: dict[str, str] = {}
    for route in iter_route_contexts(routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            scopes = scopes_of(route)
            text = route.summary + (f" (API key scope: {', '.join(scopes)})" if scopes else "")
            endpoints |= {f"{method} {route.path}": text for method in sorted(route.methods or ())}
    return endpoints


@router.get("/health", response_model=HealthResponse, summary="Liveness")
async def health() -> Response:
    """Liveness: the process answers. Cheap on purpose."""
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}}, summary="Readiness")
async def ready(request: Request) -> Response:
    """Readiness: 200 once the model is loaded and the prediction log can accept records."""
    state = _state(request)
    ok, checks, reasons = state.readiness()
    body = {
        "status": "ready" if ok else "not_ready",
        "model_version": state.model_version,
        "engine": state.predictor.engine_name if state.predictor else None,
        "checks": checks,
        "reasons": reasons,
    }
    return _json(body, 200 if ok else 503)


@router.get(
    "/model", dependencies=[require_scope("read")], responses=_errors(401, 403, 503), summary="The model's manifest"
)
async def model_manifest(request: Request) -> Response:
    """The manifest of the loaded model: version, features with units and ranges, metrics, provenance."""
    return _json(require_serving(_state(request).serving).predictor.manifest.to_dict())


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Request counts and latency by route and status, predictions by version, prediction-log health."""
    return Response(generate_latest(_state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/predictions",
    dependencies=[require_scope("read")],
    response_model=PredictionsPage,
    responses=_errors(401, 403, 422, 503),
    summary="Logged predictions, newest first",
)
async def predictions(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only ids below this")] = None,
    source: Annotated[
        str | None,
        Query(pattern=f"^{SOURCE.pattern}$", description="Only this source: live, smoke, loadcheck, bench, shadow"),
    ] = None,
) -> Response:
    """Logged predictions, newest first; follow `next_before` for older pages."""
    state = _state(request)
    if state.log is None:
        raise NotReady("the prediction log is not open yet")
    rows = await state.log.recent(limit, before, source)
    next_before = rows[-1]["id"] if len(rows) == limit else None
    return _json({"predictions": rows, "next_before": next_before})


@router.post(
    PREDICT_PATH,
    dependencies=[require_scope("predict")],
    summary="Predict one instance or a batch",
    responses={
        200: {"model": PredictResult, "description": "Predictions"},
        **_errors(400, 401, 403, 413, 415, 422, 503),
    },
)
async def predict_route(request: Request) -> Response:
    """Predict one instance (the manifest's fields) or `{"instances": [...]}`. A 2xx means the
    prediction is durably logged."""
    started = time.perf_counter()
    body = await answer(_state(request), PREDICT, request.headers, request.stream(), {},
                        request.scope["state"]["request_id"], started)  # fmt: skip
    return Response(body, media_type="application/json")
