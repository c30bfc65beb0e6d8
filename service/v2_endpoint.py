"""POST /v2/models/{name}[/versions/{version}]/infer, served by a pure-ASGI endpoint on the hot path.

As for /predict (service/predict_endpoint.py): FastAPI's routing, request and exception layers cost
about ten times the raw ASGI floor per request, and every v2 batch paid them. `V2InferEndpoint`
answers v2 infer straight from ASGI with the core the FastAPI routes run (`v2.infer`), the scopes
they declare (`auth.declared_route`) and the spec's error body (`v2.error_body`). The FastAPI routes stay:
they document infer in OpenAPI and answer it wherever this middleware is absent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth import declared_route
from service.errors import ServiceError
from service.predict_endpoint import JSON_HEADERS, _chunks, _Disconnected, error_headers, respond
from service.state import AppState
from service.v2 import error_body, infer

INFER = "/v2/models/{name}/infer"
INFER_VERSION = "/v2/models/{name}/versions/{version}/infer"
_PREFIX, _SUFFIX, _VERSIONS = "/v2/models/", "/infer", "/versions/"


def match(path: str) -> tuple[str, str | None] | None:
    """(name, version) of an infer path, as Starlette's `[^/]+` parameters would match it; None otherwise.

    String slicing instead of the routes' regular expressions: this runs for every request."""
    if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    middle = path[len(_PREFIX) : len(path) - len(_SUFFIX)]  # empty for /v2/models/infer, where the two overlap
    if not middle:
        return None
    if "/" not in middle:
        return middle, None
    name, _, version = middle.partition(_VERSIONS)
    if not name or not version or "/" in name or "/" in version:
        return None
    return name, version


class V2InferEndpoint:
    """ASGI middleware that serves POST v2 infer itself and passes everything else on."""

    def __init__(self, app: ASGIApp, state: AppState, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.plain = declared_route(routes, "POST", INFER)
        self.versioned = declared_route(routes, "POST", INFER_VERSION)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        name, version = found
        target = self.plain if version is None else self.versioned
        scope["route"] = target.route
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            self.state.auth.require(headers, *target.scopes)
            request_id: str = scope["state"]["request_id"]
            body = await infer(self.state, headers, _chunks(receive), name, version, request_id, started)
            status, extra = 200, JSON_HEADERS
        except ServiceError as exc:
            (status, body), extra = error_body(exc), error_headers(exc)
        except _Disconnected:
            return
        await respond(send, status, body, extra)
