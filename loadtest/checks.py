"""Payloads drawn from the manifest read from `/model`, and the checks on every answer.

Pure functions without Locust, so they are unit-tested directly and reused by the locustfile.
A check returns None when the answer is right and a short reason when it is not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from model.manifest import Manifest

Instance = dict[str, float | int]


def describe(manifest: Manifest) -> dict[str, str]:
    """The model under test, as the SLO report names it."""
    return {"name": manifest.name, "version": manifest.version, "task": manifest.task}


def random_instance(schema: Manifest, rng: random.Random, inner: float = 0.0) -> Instance:
    """A valid instance: every feature uniform inside the training range of the manifest.

    `inner` keeps that fraction of the range off each end: another version of the same recipe, trained on
    another sample, has a slightly different range, and the middle is inside both."""
    instance: Instance = {}
    for feature in schema.features:
        margin = (feature.max - feature.min) * inner
        low_f, high_f = feature.min + margin, feature.max - margin
        if feature.type == "integer":
            low, high = math.ceil(low_f), math.floor(high_f)
            instance[feature.name] = rng.randint(low, max(low, high))
        else:
            instance[feature.name] = round(rng.uniform(low_f, high_f), 3)
    return instance


def invalid_payloads(schema: Manifest, rng: random.Random) -> list[tuple[str, object]]:
    """(kind, body) pairs the contract says must be rejected with 422, whatever the range policy."""
    good = random_instance(schema, rng)
    first = schema.features[0].name
    missing = {k: v for k, v in good.items() if k != first}
    return [
        ("missing-feature", missing),
        ("string-value", good | {first: "not a number"}),
        ("null-value", good | {first: None}),
        ("not-an-object", [1, 2, 3]),
        ("batch-with-bad-row", {"instances": [good, missing]}),
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_prediction(item: Any, schema: Manifest) -> str | None:
    """One prediction object: a finite number, or a known class with probabilities summing to 1."""
    if not isinstance(item, Mapping) or "prediction" not in item:
        return "no prediction field"
    prediction = item["prediction"]
    if schema.task != "classification":
        return None if _is_number(prediction) else f"prediction is not a finite number: {prediction!r}"
    if prediction not in (schema.classes or ()):
        return f"prediction {prediction!r} is not one of the model's classes"
    probabilities = item.get("probabilities")
    if not isinstance(probabilities, Mapping) or set(probabilities) != set(schema.classes or ()):
        return "probabilities missing or not keyed by the model's classes"
    values = list(probabilities.values())
    if not all(_is_number(p) and 0.0 <= p <= 1.0 for p in values) or abs(sum(values) - 1.0) > 1e-3:
        return "probabilities are not a distribution"
    return None


def check_envelope(body: Any, schema: Manifest, request_id: str) -> str | None:
    """Fields every 200 from /predict carries: the loaded model version and our request id."""
    if not isinstance(body, Mapping):
        return "body is not a JSON object"
    if body.get("model_version") != schema.version:
        return f"model_version {body.get('model_version')!r} != {schema.version!r}"
    if body.get("request_id") != request_id:
        return f"request_id {body.get('request_id')!r} != sent X-Request-ID"
    return None


def check_single(status: int, body: Any, schema: Manifest, sent: Instance, request_id: str) -> str | None:
    if status != 200:
        return f"status {status}"
    problem = check_envelope(body, schema, request_id) or check_prediction(body, schema)
    if problem:
        return problem
    echoed = body.get("input")
    if not isinstance(echoed, Mapping) or set(echoed) != set(sent):
        return "input is not echoed with the features sent"
    return None


def check_batch(status: int, body: Any, schema: Manifest, size: int, request_id: str) -> str | None:
    if status != 200:
        return f"status {status}"
    problem = check_envelope(body, schema, request_id)
    if problem:
        return problem
    predictions = body.get("predictions")
    if not isinstance(predictions, Sequence) or len(predictions) != size or body.get("count") != size:
        return f"expected {size} predictions and count {size}"
    for item in predictions:
        problem = check_prediction(item, schema)
        if problem:
            return problem
    return None


def check_rejected(status: int, body: Any) -> str | None:
    """An invalid payload must get a 422 with the error envelope; anything else is a failure."""
    if status != 422:
        return f"expected 422, got {status}"
    if not isinstance(body, Mapping):
        return "422 body is not a JSON object"
    if not isinstance(body.get("error"), str) or not isinstance(body.get("message"), str):
        return "422 body lacks error/message"
    if not isinstance(body.get("details"), list):
        return "422 body lacks details"
    return None


def check_manifest(status: int, body: Any, schema: Manifest) -> str | None:
    if status != 200:
        return f"status {status}"
    if not isinstance(body, Mapping) or body.get("version") != schema.version:
        return "manifest version changed during the run"
    return None


def check_history(status: int, body: Any, limit: int) -> str | None:
    if status != 200:
        return f"status {status}"
    if not isinstance(body, Mapping) or not isinstance(body.get("predictions"), list):
        return "no predictions list"
    if len(body["predictions"]) > limit:
        return f"more than limit={limit} records"
    cursor = body.get("next_before", "absent")
    if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int)):
        return f"next_before is not an id or null: {cursor!r}"
    return None
