"""`create_app(settings)`: builds the FastAPI app. The model and the database open in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from model.artifact import ArtifactError
from model.manifest import example_instance
from service.auth import Authenticator, load_keys
from service.core import Serving
from service.docs_ui import install_offline_docs
from service.drift import LiveDrift
from service.errors import ServiceError, detail
from service.fastpath import FastPaths, ServingApp, internal_error
from service.feedback import request_body as feedback_body
from service.feedback import router as feedback_router
from service.middleware import RequestContext, RequestObserver
from service.model_runner import ModelRunner
from service.observability import AccessLog, Metrics, configure_logging
from service.prediction_log import PredictionLog
from service.protocols import V1_PREDICT
from service.quality_task import LiveQuality, QualityCollector
from service.routes import router
from service.schemas import instance_schema, v1_request_schema
from service.settings import Settings
from service.shadow import open_shadow
from service.spool import Spool
from service.state import AppState
from service.v1 import router as v1_router
from service.v2 import router as v2_router
from service.validation import InstanceValidator, problems_message

logger = logging.getLogger("modelship.app")
GC_THRESHOLD_0 = 50_000  # allocations between young collections (CPython default 700); see _settle_heap


def create_app(settings: Settings | None = None, fast_paths: bool = True) -> FastAPI:
    """The app. `fast_paths=False` leaves every request to the FastAPI routes (the parity tests' twin)."""
    settings = settings or Settings()
    _require_a_database(settings)
    configure_logging(settings.log_level)
    keys = load_keys(settings.api_keys_file) if settings.api_keys_file else None
    access_log = AccessLog() if settings.access_log else None
    state = AppState(settings, Metrics(lambda: state.log_figures()), Authenticator(keys), access_log)
    app = ServingApp(
        title="modelship",
        summary="Predictions from a versioned scikit-learn model, each one durably logged to PostgreSQL.",
        version="1",
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.modelship = state
    state.metrics.registry.register(QualityCollector(lambda: state.quality))
    app.include_router(router)
    app.include_router(feedback_router)  # labels for logged predictions
    app.include_router(v1_router)  # KServe v1, as sklearnserver answers it
    app.include_router(v2_router)  # Open Inference Protocol v2
    install_offline_docs(app)
    _install_error_handlers(app)
    routes = frozenset(r.path for r in iter_route_contexts(app.routes) if r.path)
    observer = RequestObserver(state.metrics, access_log, routes, lambda: state.model_version)
    app.add_middleware(RequestContext, observer=observer)
    if fast_paths:
        app.fast_paths = FastPaths(state, observer, app.routes)
    app.openapi = lambda: _openapi(app, state)  # type: ignore[method-assign]
    return app


# One line, as the image prints it and exits: the service never starts a database of its own.
NO_DATABASE = (
    "DATABASE_URL is required: the prediction log needs a PostgreSQL. Set it, e.g. docker run -e "
    "DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME; on a laptop `make up` starts an embedded one"
)


def _require_a_database(settings: Settings) -> None:
    """No DATABASE_URL: one line and exit, not a traceback per restart."""
    if settings.database_url is None:
        raise SystemExit(f"modelship: {NO_DATABASE}")


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: AppState = app.state.modelship
    settings = state.settings
    predictor = await _load_model(app, settings)
    validator = InstanceValidator(predictor.manifest.features, settings.range_policy)
    conninfo = await _database_url(state)
    log = PredictionLog(
        conninfo,
        Spool(settings.resolved_spool_dir),
        spool_max_bytes=settings.spool_max_bytes,
        write_timeout_s=settings.db_write_timeout_s,
        connect_timeout_s=settings.db_connect_timeout_s,
        retry_interval_s=settings.db_retry_interval_s,
        batch_max=settings.log_batch_max,
        writers=settings.log_writers,
        on_commit=state.metrics.observe_commit,
    )
    await log.start()
    drift = LiveDrift(state.metrics.registry, predictor.manifest)
    shadow = await open_shadow(settings, predictor, conninfo, state.metrics.registry)
    state.open(Serving(predictor, validator, log, drift, shadow))
    _settle_heap()
    flusher = asyncio.create_task(_flush_access_log(state.access_log)) if state.access_log else None
    state.quality = LiveQuality(log, predictor.manifest, settings)
    quality = asyncio.create_task(state.quality.run_forever(), name="live-quality")
    logger.info("serving model %s (%s) with the %s engine", predictor.version, settings.model_dir,
                predictor.engine_name)  # fmt: skip
    drift.announce()
    try:
        yield
    finally:
        logger.info("shutting down: flushing the prediction log")
        quality.cancel()
        if shadow is not None:
            await shadow.close(settings.shutdown_grace_s)
        await log.close(settings.shutdown_grace_s)
        if flusher is not None:
            flusher.cancel()
        if state.access_log is not None:
            state.access_log.flush()
        logger.info("prediction log flushed; bye")


class ModelNotLoadable(Exception):
    """The artifact cannot be served; the message is the one line start-up ends with."""


async def _load_model(app: FastAPI, settings: Settings) -> ModelRunner:
    """The verified model, or start-up stops with one line: tampered, not allowed, unreadable or missing."""
    try:
        return await asyncio.to_thread(
            ModelRunner.load, settings.model_dir, settings.allowed_digests, settings.batch_wait_ms / 1000,
            settings.engine == "auto",
        )  # fmt: skip
    except ArtifactError as exc:
        reason = str(exc)
    except PermissionError as exc:
        reason = f"{exc.filename or settings.model_dir} is not readable by this user ({exc.strerror}); " \
                 "make the artifact readable (chmod -R a+rX) or run as its owner"  # fmt: skip
    except OSError as exc:
        reason = f"{exc.filename or settings.model_dir}: {exc.strerror or exc}; mount or copy the artifact there"
    line = f"modelship: refusing to load the model in {settings.model_dir}: {reason}"
    print(line, file=sys.stderr)
    app.state.startup_failure = line
    raise ModelNotLoadable(line)


async def _database_url(state: AppState) -> str:
    # Dev tools (`make up`, the local target) start an embedded PostgreSQL and pass its URL, as a pod gets one.
    if state.settings.database_url is None:
        raise SystemExit(f"modelship: {NO_DATABASE}")
    return state.settings.database_url.get_secret_value()


def _settle_heap() -> None:
    """Take what start-up built out of the collector's view, and collect the young generation less often.

    The imports and the model leave about a million tracked objects that live as long as the process.
    Every full collection walked them all: `python -m loadtest.bench.batch_p99` (batches of 100, 32
    connections, one worker) saw 6-7 full collections of 350 ms each (max 530 ms) in 12 s, which set
    the batch p99 (630-740 ms). With gc.freeze() they took under 20 ms; with the threshold raised
    too, no collection ran in the window. Request objects are freed by reference counting anyway.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_0, 20, 20)


async def _flush_access_log(access_log: AccessLog) -> None:
    while True:
        await asyncio.sleep(0.2)
        access_log.flush()


def _error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        return _error_response(exc.status, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        details = [detail(e["loc"], e["msg"]) for e in exc.errors()]
        body = {"error": "validation_error", "message": problems_message(len(details), details), "details": details}
        return _error_response(422, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        allowed = next((v for k, v in headers.items() if k.lower() == "allow"), None)
        if exc.status_code == 405 and allowed:
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        return _error_response(exc.status_code, {"error": code, "message": message, "details": []}, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = request.scope.get("state", {}).get("request_id")
        logger.exception("unexpected error (request_id=%s)", request_id)
        return Response(internal_error(request_id), status_code=500, media_type="application/json")


def _openapi(app: FastAPI, state: AppState) -> dict[str, Any]:
    """The OpenAPI document, with /predict's body generated from the loaded model's features."""
    version = state.model_version or "not loaded"
    if app.openapi_schema and app.openapi_schema.get("info", {}).get("x-model-version") == version:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    schema["info"]["x-model-version"] = version
    features = state.predictor.manifest.features if state.predictor else ()
    instance = instance_schema(features, state.settings.range_policy == "reject")
    batch = {
        "type": "object",
        "title": "Batch",
        "required": ["instances"],
        "additionalProperties": False,
        "properties": {
            "instances": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Instance"},
                "minItems": 1,
                "maxItems": state.settings.max_batch,
            }
        },
    }
    schema.setdefault("components", {}).setdefault("schemas", {}).update(Instance=instance, Batch=batch)
    example = example_instance(features)
    schema["paths"]["/predict"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [{"$ref": "#/components/schemas/Instance"}, {"$ref": "#/components/schemas/Batch"}]
                },
                "examples": {
                    "one": {"summary": "One instance", "value": example},
                    "batch": {"summary": "A batch", "value": {"instances": [example, example]}},
                },
            }
        },
    }
    if state.predictor is not None:
        manifest = state.predictor.manifest
        schema["paths"]["/feedback"]["post"]["requestBody"] = feedback_body(manifest.task, manifest.classes)
    v1_body = schema["paths"][V1_PREDICT]["post"]["requestBody"]["content"]["application/json"]
    v1_body["schema"] = v1_request_schema(features, state.settings.range_policy == "reject", state.settings.max_batch)
    if not state.auth.enabled:
        _without_security(schema)
    app.openapi_schema = schema
    return schema


def _without_security(schema: dict[str, Any]) -> None:
    """Keys are off: no route needs one, whatever the routes declare, so the document claims none."""
    schema["components"].pop("securitySchemes", None)
    for operations in schema["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
