"""The pure-ASGI transport: POST /predict, KServe v1 predict and v2 infer, served before FastAPI's stack.

FastAPI's routing, request object, exception layers and middleware stack cost several times the raw
ASGI floor per request (`python -m loadtest.bench.asgi_cpu` measures it). `ServingApp` answers these
routes straight from its `__call__`: it observes the request as the middleware does
(`RequestObserver`: request id, metrics, access log), checks the scopes the FastAPI route declares,
and runs the core. The FastAPI routes stay: they document each route in OpenAPI, and answer it when
the app is built without fast paths (the parity tests compare the two, byte for byte).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from service.auth import DeclaredRoute, declared_route
from service.core import WireProtocol, answer
from service.errors import ServiceError
from service.middleware import RequestObserver, send_bad_request_id
from service.protocols import PREDICT, PREDICT_PATH, V1, V1_PREDICT, V2, V2_INFER, V2_INFER_VERSION, kserve_v1, v2

logger = logging.getLogger("modelship.fastpath")
JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class FastRoute:
    protocol: WireProtocol
    declared: DeclaredRoute  # the FastAPI route it answers for: its scopes, and the metrics label


class FastPaths:
    """Finds the fast route of a POST path and serves it through the core."""

    def __init__(self, state: Any, observer: RequestObserver, routes: Sequence[BaseRoute]) -> None:
        self.state = state
        self.observer = observer
        route = {path: declared_route(routes, "POST", path) for path in (PREDICT_PATH, V1_PREDICT, V2_INFER,
                                                                           V2_INFER_VERSION)}  # fmt: skip
        self.predict = FastRoute(PREDICT, route[PREDICT_PATH])
        self.v1 = FastRoute(V1, route[V1_PREDICT])
        self.v2 = FastRoute(V2, route[V2_INFER])
        self.v2_version = FastRoute(V2, route[V2_INFER_VERSION])

    def find(self, path: str) -> tuple[FastRoute, dict[str, str]] | None:
        if path == PREDICT_PATH:
            return self.predict, {}
        params = v2.match(path)
        if params is not None:
            return (self.v2_version if "version" in params else self.v2), params
        params = kserve_v1.match(path)
        return None if params is None else (self.v1, params)

    async def serve(self, found: tuple[FastRoute, dict[str, str]], scope: Scope, receive: Receive,
                    send: Send) -> None:  # fmt: skip
        started = time.perf_counter()
        target, params = found
        request_id = self.observer.request_id(scope)
        if request_id is None:
            await send_bad_request_id(send)
            return
        scope["route"] = target.declared.route
        status = 500
        try:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                self.state.auth.require(headers, *target.declared.scopes)
                body = await answer(self.state, target.protocol, headers, _chunks(receive), params, request_id,
                                    started)  # fmt: skip
                status, extra = 200, JSON_HEADERS
            except ServiceError as exc:
                (status, body), extra = target.protocol.error(exc), error_headers(exc)
            except _Disconnected:
                return
            except Exception:
                logger.exception("unexpected error (request_id=%s)", request_id)
                status, body, extra = 500, internal_error(request_id), JSON_HEADERS
            await respond(send, status, body, extra, (b"x-request-id", request_id.encode()))
        finally:
            self.observer.finish(scope, request_id, status, started)


class ServingApp(FastAPI):
    """The FastAPI app, with the fast paths answered before its middleware stack."""

    fast_paths: FastPaths | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_paths
        if fast is not None and scope["type"] == "http" and scope["method"] == "POST":
            found = fast.find(scope["path"])
            if found is not None:
                await fast.serve(found, scope, receive, send)
                return
        if scope["type"] == "lifespan":
            send = self._without_startup_traceback(send)
        await super().__call__(scope, receive, send)

    def _without_startup_traceback(self, send: Send) -> Send:
        """A start-up that failed for a known reason already printed its one line: uvicorn adds no traceback."""

        async def send_plainly(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and getattr(self.state, "startup_failure", None):
                message = {**message, "message": ""}
            await send(message)

        return send_plainly


def internal_error(request_id: str | None) -> bytes:
    """The body of an unexpected failure: no internals, the request id to quote."""
    return orjson.dumps({"error": "internal_error", "message": f"unexpected error; quote request_id {request_id}",
                         "details": []})  # fmt: skip


def error_headers(exc: ServiceError) -> list[tuple[bytes, bytes]]:
    """A JSON error's headers: the content type, and the error's own (WWW-Authenticate, Retry-After)."""
    return JSON_HEADERS + [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]],
                  *last: tuple[bytes, bytes]) -> None:  # fmt: skip
    """A whole answer: its head with Content-Length (then `last`, as the middleware appends X-Request-ID)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()), *last]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class _Disconnected(Exception):
    pass


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
