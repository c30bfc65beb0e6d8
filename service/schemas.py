"""Response models (they document the API) and the request schema generated from the manifest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from model.manifest import ManifestFeature


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is: body, then field names and indexes")
    field: str = Field(description="Dotted field name", examples=["size"])
    problem: str = Field(description="What is wrong and what is allowed")


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable error code", examples=["validation_error"])
    message: str = Field(description="What was wrong, in one sentence")
    details: list[ErrorDetail] = Field(default_factory=list)


class PredictResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    prediction: float | str = Field(description="Predicted value (regression) or class label")
    probabilities: dict[str, float] | None = Field(None, description="Class probabilities (classification)")
    input: dict[str, Any] = Field(description="The instance as received")
    model_version: str
    request_id: str
    warnings: list[str] | None = Field(None, description="Out-of-range values, when range_policy=flag")


class BatchItem(BaseModel):
    prediction: float | str
    probabilities: dict[str, float] | None = None


class BatchPredictResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    predictions: list[BatchItem]
    count: int
    model_version: str
    request_id: str
    warnings: list[str] | None = None


class PredictResult(RootModel[PredictResponse | BatchPredictResponse]):
    pass


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    status: str = Field(examples=["ready"])
    model_version: str | None
    engine: str | None = Field(None, description="native (verified against scikit-learn) or scikit-learn")
    checks: dict[str, bool]
    reasons: list[str] = Field(default_factory=list)


class PredictionRecord(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    id: int
    request_id: str
    model_version: str
    source: str = Field(description="live, or the X-Modelship-Source the request named")
    inputs: Any
    outputs: Any
    latency_ms: float
    created_at: str


class PredictionsPage(BaseModel):
    predictions: list[PredictionRecord]
    next_before: int | None = Field(description="Pass as `before` to get the next (older) page")


def instance_schema(features: Sequence[ManifestFeature], with_range: bool) -> dict[str, Any]:
    properties = {}
    for feature in features:
        prop: dict[str, Any] = {"type": feature.type, "description": f"{feature.description} ({feature.unit})"}
        if with_range:
            prop |= {"minimum": feature.min, "maximum": feature.max}
        properties[feature.name] = prop
    return {
        "type": "object",
        "title": "Instance",
        "properties": properties,
        "required": [feature.name for feature in features],
        "additionalProperties": False,
    }


def v1_request_schema(features: Sequence[ManifestFeature], with_range: bool, max_batch: int) -> dict[str, Any]:
    """KServe v1's body for this model: each instance an array of its values in feature order."""
    values = []
    for feature in features:
        value: dict[str, Any] = {"type": feature.type, "description": f"{feature.name} ({feature.unit})"}
        if with_range:
            value |= {"minimum": feature.min, "maximum": feature.max}
        values.append(value)
    row = {"type": "array", "prefixItems": values, "items": False, "minItems": len(values), "maxItems": len(values),
           "description": f"One instance: {', '.join(f.name for f in features)}"}  # fmt: skip
    return {
        "type": "object",
        "title": "V1Request",
        "required": ["instances"],
        "additionalProperties": False,
        "properties": {"instances": {"type": "array", "items": row, "minItems": 1, "maxItems": max_batch}},
    }
