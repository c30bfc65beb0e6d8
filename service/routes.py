"""The HTTP routes. /predict parses its own body: it decides between one instance and a batch,
and it must turn every malformed body into a clear 4xx rather than a framework default."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import db
from service.errors import (
    BodyTooLarge,
    DatabaseUnavailable,
    InvalidInput,
    MalformedJSON,
    NotReady,
    UnsupportedMediaType,
)
from service.predlog import DB_ERRORS
from service.schemas import (
    ErrorResponse,
    HealthResponse,
    PredictionsPage,
    PredictResult,
    ReadyResponse,
)
from service.state import AppState
from service.validation import kind_of

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
    st = _state(request)
    return {
        "name": "modelship",
        "description": "Predictions from a versioned scikit-learn model; every answer is logged to PostgreSQL.",
        "model_version": st.model_version,
        "endpoints": {
            "POST /predict": 'One instance, or {"instances": [...]} for a batch',
            "GET /predictions": "Logged predictions, newest first (?limit=&before=)",
            "GET /model": "The model's manifest: version, features, metrics",
            "GET /health": "Liveness",
            "GET /ready": "Readiness",
            "GET /metrics": "Prometheus metrics",
        },
        "docs": "/docs",
        "openapi": "/openapi.json",
    }


@router.get("/health", response_model=HealthResponse, summary="Liveness")
async def health() -> Response:
    """Liveness: the process answers. Cheap on purpose."""
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}}, summary="Readiness")
async def ready(request: Request) -> Response:
    """Readiness: 200 once the model is loaded and the prediction log can accept records."""
    st = _state(request)
    checks = {
        "model_loaded": st.predictor is not None,
        "log_accepting": bool(st.log and st.log.accepting),
        "database_reachable": bool(st.log and st.log.db_ok),
    }
    reasons = [*st.problems]
    if not checks["model_loaded"]:
        reasons.append("the model is not loaded yet")
    if not checks["log_accepting"] and st.log is not None:
        reasons.append(f"the prediction log cannot accept records: {st.log.unavailable_reason()}")
    ok = checks["model_loaded"] and checks["log_accepting"]
    body = {
        "status": "ready" if ok else "not_ready",
        "model_version": st.model_version,
        "checks": checks,
        "reasons": reasons,
    }
    return _json(body, 200 if ok else 503)


@router.get("/model", responses=_errors(401, 403, 503), summary="The model's manifest")
async def model_manifest(request: Request) -> Response:
    """The manifest of the loaded model: version, features with units and ranges, metrics, provenance."""
    st = _state(request)
    st.auth.require(request, "read")
    if st.predictor is None:
        raise NotReady("the model is not loaded yet")
    return _json(st.predictor.manifest)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Request counts and latency by route and status, predictions by version, prediction-log health."""
    return Response(generate_latest(_state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/predictions",
    response_model=PredictionsPage,
    responses=_errors(401, 403, 422, 503),
    summary="Logged predictions, newest first",
)
async def predictions(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only ids below this")] = None,
) -> Response:
    """Logged predictions, newest first; follow `next_before` for older pages."""
    st = _state(request)
    st.auth.require(request, "read")
    if st.log is None:
        raise NotReady("the prediction log is not open yet")
    try:
        async with st.log.pool.connection(timeout=2) as conn:
            rows = await db.list_predictions(conn, limit, before)
    except DB_ERRORS as exc:
        raise DatabaseUnavailable(f"the prediction log database is unreachable ({type(exc).__name__})") from None
    for row in rows:
        row["created_at"] = row["created_at"].isoformat()
    next_before = rows[-1]["id"] if len(rows) == limit else None
    return _json({"predictions": rows, "next_before": next_before})


@router.post(
    "/predict",
    summary="Predict one instance or a batch",
    responses={
        200: {"model": PredictResult, "description": "Predictions"},
        **_errors(400, 401, 403, 413, 415, 422, 503),
    },
)
async def predict(request: Request) -> Response:
    """Predict one instance (the manifest's fields) or `{"instances": [...]}`. A 2xx means the
    prediction is durably logged."""
    started = time.perf_counter()
    st = _state(request)
    st.auth.require(request, "predict")
    if st.predictor is None or st.validator is None or st.log is None:
        raise NotReady("the model is not loaded yet")
    payload = _parse(await _read_body(request, st.settings.max_body_bytes))
    instances, batch, echo = _instances(payload, st.validator.names, st.settings.max_batch)
    checked = st.validator.check(instances, ("body", "instances") if batch else ("body",))
    outputs = await st.predictor.predict(checked.rows)
    st.metrics.predictions.labels(st.predictor.version).inc(len(outputs))
    request_id: str = request.scope["state"]["request_id"]
    logged_in: Any
    logged_out: Any
    if batch:
        body: dict[str, Any] = {
            "predictions": outputs,
            "count": len(outputs),
            "model_version": st.predictor.version,
            "request_id": request_id,
        }
        logged_in, logged_out = instances, outputs
    else:
        body = {**outputs[0], "input": echo, "model_version": st.predictor.version, "request_id": request_id}
        logged_in, logged_out = echo, outputs[0]
    if checked.warnings:
        body["warnings"] = checked.warnings
    latency_ms = (time.perf_counter() - started) * 1000
    row = [
        request_id,
        st.predictor.version,
        orjson.dumps(logged_in).decode(),
        orjson.dumps(logged_out).decode(),
        latency_ms,
        time.time(),
    ]
    await st.log.record(row, st.settings.request_timeout_s)
    return _json(body)


async def _read_body(request: Request, limit: int) -> bytes:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
            [{"loc": ["header", "content-type"], "field": "Content-Type", "problem": "must be application/json"}],
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} (MODELSHIP_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes (MODELSHIP_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> Any:
    if not body:
        raise MalformedJSON("the body is empty; send a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson refuses NaN, Infinity and integers beyond 64 bits. The standard parser accepts
        # them, so validation can name the field instead of pointing at a byte offset.
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedJSON(f"the body is not valid JSON: {exc}") from None
    if _may_have_duplicate_keys(body, payload):
        _reject_duplicate_keys(body)
    return payload


def _may_have_duplicate_keys(body: bytes, payload: Any) -> bool:
    # Every key is followed by a colon; if the parsed objects hold fewer keys than the body has
    # colons, either a string contains a colon or a key repeats. Only then pay for a full check.
    return body.count(b":") > _count_keys(payload)


def _count_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


def _reject_duplicate_keys(body: bytes) -> None:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(
                    f"the field {key!r} appears more than once in one object",
                    [{"loc": ["body", key], "field": key, "problem": "duplicate key"}],
                )
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(body, object_pairs_hook=hook)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise MalformedJSON(f"the body is not valid JSON: {exc}") from None


def _instances(payload: Any, names: list[str], max_batch: int) -> tuple[list[Any], bool, Any]:
    """Return (instances, is_batch, the single instance to echo)."""
    if not isinstance(payload, dict):
        raise InvalidInput(
            'the body must be a JSON object: one instance, or {"instances": [...]}',
            [{"loc": ["body"], "field": "body", "problem": f"must be a JSON object, got {kind_of(payload)}"}],
        )
    if "instances" in payload:
        extra = sorted(set(payload) - {"instances"})
        instances = payload["instances"]
        if extra or not isinstance(instances, list):
            problem = f"unexpected fields {extra}" if extra else "must be an array of instances"
            raise InvalidInput(
                f'a batch is {{"instances": [...]}}: {problem}',
                [{"loc": ["body", "instances"], "field": "instances", "problem": problem}],
            )
        if not 1 <= len(instances) <= max_batch:
            problem = f"must hold 1 to {max_batch} instances, got {len(instances)}"
            raise InvalidInput(
                f"instances {problem} (MODELSHIP_MAX_BATCH)",
                [{"loc": ["body", "instances"], "field": "instances", "problem": problem}],
            )
        return instances, True, None
    if set(payload) == {"input"} and isinstance(payload["input"], list):
        # The positional form of the iris tutorial: {"input": [5.1, 3.5, 1.4, 0.2]}.
        values = payload["input"]
        if len(values) != len(names):
            problem = f"must hold {len(names)} values in the order {names}, got {len(values)}"
            raise InvalidInput(f"input {problem}", [{"loc": ["body", "input"], "field": "input", "problem": problem}])
        instance = dict(zip(names, values, strict=True))
        return [instance], False, instance
    return [payload], False, payload
