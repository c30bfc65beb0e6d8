"""Request id, timing, metrics and the access log: `RequestObserver`, used by the fast path and the middleware.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task and no body copy per request. The fast path
(`service.fastpath`) calls the same observer inline, so every request is counted, timed and logged by
one piece of code whichever way it is served.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BadHeader, header_detail
from service.observability import AccessLog, Metrics

REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
BAD_REQUEST_ID = BadHeader(
    "X-Request-ID must be 1-128 characters from [A-Za-z0-9._:-]", [header_detail("X-Request-ID", "invalid format")]
)


class RequestObserver:
    def __init__(
        self,
        metrics: Metrics,
        access_log: AccessLog | None,
        routes: frozenset[str],
        model_version: Callable[[], str | None],
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.routes = routes
        self.model_version = model_version  # a callable: the model loads after the app is built

    @staticmethod
    def request_id(scope: Scope) -> str | None:
        """The client's X-Request-ID, or a new one; None when the client's is malformed (a 400)."""
        header = _header(scope, b"x-request-id")
        if header is not None and not REQUEST_ID.match(header):
            return None
        request_id = header.decode() if header else os.urandom(16).hex()  # uuid4().hex's shape, a quarter of its cost
        scope.setdefault("state", {})["request_id"] = request_id
        return request_id

    def finish(self, scope: Scope, request_id: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        path = scope["path"]
        # A templated route (/v2/models/{name}/infer) is labelled by its template: bounded cardinality.
        template = getattr(scope.get("route"), "path", None)
        route = path if path in self.routes else template if template in self.routes else "unmatched"
        self.metrics.observe(route, scope["method"], status, elapsed)
        if self.access_log is not None:
            self.access_log.write(
                {
                    "ts": _iso_now(),
                    "level": "info",
                    "msg": "request",
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 3),
                    "model_version": self.model_version(),
                }
            )


class RequestContext:
    """The middleware every request the fast path does not serve passes through."""

    def __init__(self, app: ASGIApp, observer: RequestObserver) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = self.observer.request_id(scope)
        if request_id is None:
            await send_bad_request_id(send)
            return
        status = 500
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.observer.finish(scope, request_id, status, started)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def send_bad_request_id(send: Send) -> None:
    body = orjson.dumps(BAD_REQUEST_ID.body())
    await send(
        {
            "type": "http.response.start",
            "status": BAD_REQUEST_ID.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
