"""KServe v1 (`POST /v1/models/{name}:predict`): the route that documents it; the core answers it.

The wire format is `service.protocols.kserve_v1`'s; the fast path serves the same route with the same
core, scopes and metrics label.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.auth import require_scope
from service.protocols import V1, V1_PREDICT
from service.routing import answer_route, protocol_route
from service.v2_schemas import ERRORS

router = APIRouter(tags=["KServe v1"], route_class=protocol_route(V1))
V1_REQUEST = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["instances"],
            "properties": {"instances": {"type": "array", "minItems": 1, "items": {
                "type": "array", "items": {"type": "number"},
                "description": "One instance: its values in the manifest's feature order (GET /v2/models/{name})"}}},
        }}},
    }
}  # fmt: skip
V1_RESPONSES = {
    200: {"description": "One prediction per instance, as KServe's sklearnserver answers",
          "content": {"application/json": {"example": {"predictions": [412000.5], "model_version": "…",
                                                       "request_id": "…"}}}},
    **ERRORS,
}  # fmt: skip


@router.post(V1_PREDICT, dependencies=[require_scope("predict")], responses=V1_RESPONSES, openapi_extra=V1_REQUEST,
             summary="Predict (KServe v1)")  # fmt: skip
async def v1_predict(request: Request, name: str) -> Response:
    """`{"instances": [[...], ...]}` in feature order; `{"predictions": [...]}`. A 2xx means it is durably logged."""
    return await answer_route(request, V1, {"name": name})
