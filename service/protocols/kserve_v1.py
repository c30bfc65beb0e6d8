"""KServe's v1 protocol (`POST /v1/models/{name}:predict`), as KServe's sklearnserver answers it.

The body is `{"instances": [[...], ...]}`: one list per instance, its values in the manifest's feature
order (`GET /v2/models/{name}` lists them). The answer is `{"predictions": [...]}`: what the
estimator's `predict` gives, as sklearnserver returns it (a value per instance for a regression,
rounded as every modelship answer is; the estimator's class label for a classifier), so a KServe
client works unchanged. modelship adds `model_version` and `request_id`, and `warnings` when the
range policy flags a value. Errors are KServe's `{"error": "<message>"}` with `details` naming each
field, 400 for a bad request and 404 for a model that is not served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from service.body import json_media, parse
from service.core import Instances, Result, Serving
from service.errors import InvalidInput, ServiceError, detail
from service.protocols.common import kserve_error, loaded
from service.validation import MAX_PROBLEMS, kind_of, problems_message

V1_PREDICT = "/v1/models/{name}:predict"
_PREFIX, _SUFFIX = "/v1/models/", ":predict"
_LISTS, _NUMBERS = frozenset({list}), frozenset({int, float})


def match(path: str) -> dict[str, str] | None:
    """The path parameters of a v1 predict path, as Starlette's `[^/]+` would match them; None otherwise."""
    if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    name = path[len(_PREFIX) : len(path) - len(_SUFFIX)]
    return {"name": name} if name and "/" not in name else None


class KServeV1:
    name = "v1"

    media_ok = staticmethod(json_media)

    @staticmethod
    def decode(serving: Serving, body: bytes, headers: Mapping[str, str], params: Mapping[str, str],
               max_batch: int) -> Instances:  # fmt: skip
        loaded(serving, params["name"], None)
        names = serving.validator.names
        rows = _rows(parse(body), len(names), max_batch)
        loc = ("body", "instances")
        values = [v for row in rows for v in row]
        if set(map(type, values)) <= _NUMBERS:
            try:
                matrix = np.array(values, dtype=np.float64).reshape(len(rows), len(names))
                return Instances("v1", loc, matrix=matrix, stored=rows)
            except OverflowError:
                pass
        # A value that is not a JSON number: the objects' rules name it by instance and feature.
        return Instances("v1", loc, objects=[dict(zip(names, row, strict=True)) for row in rows], stored=rows)

    @staticmethod
    def render(result: Result) -> bytes:
        outputs, predictor = result.outputs, result.predictor
        predictions: Any = outputs.values
        if outputs.best is not None:
            predictions = np.asarray(predictor.estimator.classes_)[outputs.best].tolist()
        body: dict[str, Any] = {"predictions": predictions, "model_version": predictor.version,
                                "request_id": result.request_id}  # fmt: skip
        if result.warnings:
            body["warnings"] = result.warnings
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    @staticmethod
    def error(exc: ServiceError) -> tuple[int, bytes]:
        return kserve_error(exc)


V1 = KServeV1()


def _rows(payload: Any, width: int, max_batch: int) -> list[list[Any]]:
    shape = f'{{"instances": [[...{width} values...], ...]}}'
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        got = kind_of(payload) if not isinstance(payload, dict) else "an object without an instances array"
        raise InvalidInput(f"the body must be {shape}, got {got}", [detail(["body", "instances"], "required")])
    extra = sorted(set(payload) - {"instances"})
    if extra:
        raise InvalidInput(f"unexpected fields {extra}; the body is {shape}", [detail(["body", extra[0]], "unknown")])
    rows: list[list[Any]] = payload["instances"]
    if not 1 <= len(rows) <= max_batch:
        problem = f"must hold 1 to {max_batch} instances, got {len(rows)}"
        raise InvalidInput(f"instances {problem} (MODELSHIP_MAX_BATCH)", [detail(["body", "instances"], problem)])
    if set(map(type, rows)) != _LISTS or set(map(len, rows)) != {width}:
        bad = [(i, r) for i, r in enumerate(rows) if not isinstance(r, list) or len(r) != width]
        details = [detail(["body", "instances", i], f"must be an array of {width} values in feature order, got "
                          + (f"{len(r)} values" if isinstance(r, list) else kind_of(r)))
                   for i, r in bad[:MAX_PROBLEMS]]  # fmt: skip
        raise InvalidInput(problems_message(len(bad), details), details)
    return rows
