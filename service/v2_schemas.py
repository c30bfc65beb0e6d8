"""OpenAPI shapes of the v2 routes, as the spec's JSON objects (inference_rest.md, "Payload Contents")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class MetadataServer(BaseModel):
    name: str = Field(examples=["modelship"])
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(examples=["FP64"])
    shape: list[int] = Field(description="-1 marks a variable dimension")


class MetadataModel(BaseModel):
    name: str
    versions: list[str]
    platform: str = Field(examples=["sklearn_joblib"])
    inputs: list[MetadataTensor] = Field(description="One [N] tensor per feature; one [N, n_features] tensor works too")
    outputs: list[MetadataTensor]


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferenceResponse(BaseModel):
    model_config = {"protected_namespaces": ()}
    model_name: str
    model_version: str
    id: str = Field(description="The request's id, else the X-Request-ID of the logged record")
    parameters: dict[str, Any] = Field(description="request_id; warnings when range_policy=flag")
    outputs: list[ResponseOutput]


class ErrorV2(BaseModel):
    error: str = Field(description="What was wrong and how to fix it")
    details: list[dict[str, Any]] | None = Field(None, description="Each bad field: loc, field, problem")


_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": ["FP32", "FP64", "INT32", "INT64"]},
        "parameters": {"type": "object", "description": "binary_data_size: the tensor's bytes follow the JSON"},
        "data": {"type": "array", "description": "Row-major values, flat or nested"},
    },
}
_EXAMPLE = {"id": "42", "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [2500, 3, 10]}]}
INFER_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "title": "InferenceRequest",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                },
                "example": _EXAMPLE,
            }
        },
    }
}
_TEXT = {
    400: "Bad request: the body, a tensor or a value is invalid; `details` names each field",
    401: "Missing or invalid API key",
    403: "API key lacks the scope",
    404: "No such model or version; the message names what is loaded",
    413: "Request body too large",
    415: "Content-Type is neither JSON nor application/octet-stream",
    503: "Not ready, or the prediction cannot be made durable (see Retry-After)",
}
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorV2, "description": t} for code, t in _TEXT.items()}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"model": InferenceResponse, "description": "OK"}, **ERRORS}
READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: ERRORS[404],
    503: {"model": ModelReady, "description": "Loaded, but the prediction log cannot accept records"},
}
