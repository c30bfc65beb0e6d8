"""What the FastAPI routes of a wire protocol share: errors in the protocol's terms, and the core's answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from service.core import WireProtocol, answer
from service.errors import ServiceError
from service.state import AppState


def protocol_route(protocol: WireProtocol) -> type[APIRoute]:
    """A route class that answers every ServiceError, its declared key check's included, in `protocol`'s terms."""

    class ProtocolRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def handle_in_protocol_terms(request: Request) -> Response:
                try:
                    return await handle(request)
                except ServiceError as exc:
                    status, body = protocol.error(exc)
                    return Response(body, status_code=status, media_type="application/json", headers=exc.headers)

            return handle_in_protocol_terms

    return ProtocolRoute


async def answer_route(request: Request, protocol: WireProtocol, params: dict[str, str]) -> Response:
    """A documenting route's answer: the core, exactly as the fast path runs it."""
    started = time.perf_counter()
    state: AppState = request.app.state.modelship
    body = await answer(state, protocol, request.headers, request.stream(), params,
                        request.scope["state"]["request_id"], started)  # fmt: skip
    return Response(body, media_type="application/json")
