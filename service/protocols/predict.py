"""POST /predict: one instance (the manifest's fields, or the iris tutorial's `{"input": [...]}`) or a batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from service.body import json_media, parse
from service.core import Instances, Result, Serving, output_objects
from service.errors import InvalidInput, ServiceError, detail
from service.validation import kind_of

PREDICT_PATH = "/predict"


class PredictProtocol:
    name = "predict"

    media_ok = staticmethod(json_media)

    @staticmethod
    def decode(serving: Serving, body: bytes, headers: Mapping[str, str], params: Mapping[str, str],
               max_batch: int) -> Instances:  # fmt: skip
        instances, batch = split_instances(parse(body), serving.validator.names, max_batch)
        if batch:
            return Instances("predict", ("body", "instances"), objects=instances)
        return Instances("predict", ("body",), objects=instances, single=True)

    @staticmethod
    def render(result: Result) -> bytes:
        answers = output_objects(result)
        instances = result.instances
        if instances.single:
            body: dict[str, Any] = {**answers[0], "input": instances.objects[0] if instances.objects else None}
        else:
            body = {"predictions": answers, "count": len(answers)}
        body["model_version"] = result.predictor.version
        body["request_id"] = result.request_id
        if result.warnings:
            body["warnings"] = result.warnings
        return orjson.dumps(body)

    @staticmethod
    def error(exc: ServiceError) -> tuple[int, bytes]:
        return exc.status, orjson.dumps(exc.body())


PREDICT = PredictProtocol()


def _invalid(field: str, problem: str, message: str) -> InvalidInput:
    return InvalidInput(message, [detail(["body", field], problem)])


def split_instances(payload: Any, names: list[str], max_batch: int) -> tuple[list[Any], bool]:
    """(instances, is_batch); a single instance is the one to echo back."""
    if not isinstance(payload, dict):
        raise InvalidInput(
            'the body must be a JSON object: one instance, or {"instances": [...]}',
            [detail(["body"], f"must be a JSON object, got {kind_of(payload)}")],
        )
    if "instances" in payload:
        extra = sorted(set(payload) - {"instances"})
        instances = payload["instances"]
        if extra or not isinstance(instances, list):
            problem = f"unexpected fields {extra}" if extra else "must be an array of instances"
            raise _invalid("instances", problem, f'a batch is {{"instances": [...]}}: {problem}')
        if not 1 <= len(instances) <= max_batch:
            problem = f"must hold 1 to {max_batch} instances, got {len(instances)}"
            raise _invalid("instances", problem, f"instances {problem} (MODELSHIP_MAX_BATCH)")
        return instances, True
    if set(payload) == {"input"} and isinstance(payload["input"], list):
        # The positional form of the iris tutorial: {"input": [5.1, 3.5, 1.4, 0.2]}.
        values = payload["input"]
        if len(values) != len(names):
            problem = f"must hold {len(names)} values in the order {names}, got {len(values)}"
            raise _invalid("input", problem, f"input {problem}")
        return [dict(zip(names, values, strict=True))], False
    return [payload], False
