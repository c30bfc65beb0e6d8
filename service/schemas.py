"""Response models (they document the API) and the request schema generated from the manifest."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel


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
    inputs: Any
    outputs: Any
    latency_ms: float
    created_at: str


class PredictionsPage(BaseModel):
    predictions: list[PredictionRecord]
    next_before: int | None = Field(description="Pass as `before` to get the next (older) page")


def instance_schema(features: list[dict[str, Any]], with_range: bool) -> dict[str, Any]:
    properties = {}
    for f in features:
        prop: dict[str, Any] = {"type": f["type"], "description": f"{f['description']} ({f['unit']})"}
        if with_range:
            prop |= {"minimum": f["min"], "maximum": f["max"]}
        properties[f["name"]] = prop
    return {
        "type": "object",
        "title": "Instance",
        "properties": properties,
        "required": [f["name"] for f in features],
        "additionalProperties": False,
    }


def example_instance(features: list[dict[str, Any]]) -> dict[str, Any]:
    known = {
        "size": 2500,
        "bedrooms": 3,
        "age": 10,
        "sepal_length": 5.1,
        "sepal_width": 3.5,
        "petal_length": 1.4,
        "petal_width": 0.2,
    }
    example = {}
    for f in features:
        middle = (f["min"] + f["max"]) / 2
        example[f["name"]] = known.get(f["name"], round(middle) if f["type"] == "integer" else round(middle, 2))
    return example
