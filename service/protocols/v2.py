"""Open Inference Protocol v2 infer (REST), as KServe, MLServer, Triton and Seldon clients call it.

Spec: kserve/open-inference-protocol, specification/protocol/inference_rest.md. The tensors become
one float64 matrix in feature order (`service.v2_tensors`); the rest is the core's: the same rules as
/predict, the same micro-batcher and rounding, and a 2xx only once the request's one log row is
durable. Errors use the spec's body, `{"error": "<message>"}` (plus `details` naming each field),
with 400 for anything wrong in the request and 404 for a model name or version that is not loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from service.body import parse
from service.core import Instances, Result, Serving
from service.errors import MalformedJSON, ServiceError
from service.model_runner import ModelRunner
from service.protocols.common import kserve_error, loaded
from service.v2_tensors import bad, decode

V2_INFER = "/v2/models/{name}/infer"
V2_INFER_VERSION = "/v2/models/{name}/versions/{version}/infer"
JSON_MEDIA = frozenset({"", "application/json", "application/octet-stream"})
NUMPY = orjson.OPT_SERIALIZE_NUMPY
_PREFIX, _SUFFIX, _VERSIONS = "/v2/models/", "/infer", "/versions/"


def match(path: str) -> dict[str, str] | None:
    """The path parameters of an infer path, as Starlette's `[^/]+` parameters would match it; None otherwise.

    String slicing instead of the routes' regular expressions: this runs for every request."""
    if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    middle = path[len(_PREFIX) : len(path) - len(_SUFFIX)]  # empty for /v2/models/infer, where the two overlap
    if not middle:
        return None
    if "/" not in middle:
        return {"name": middle}
    name, _, version = middle.partition(_VERSIONS)
    if not name or not version or "/" in name or "/" in version:
        return None
    return {"name": name, "version": version}


class OpenInferenceV2:
    name = "v2"

    @staticmethod
    def media_ok(media: str) -> bool:
        # tritonclient sends no Content-Type at all, and binary tensors as application/octet-stream.
        return media in JSON_MEDIA or media.endswith("+json")

    @staticmethod
    def decode(serving: Serving, body: bytes, headers: Mapping[str, str], params: Mapping[str, str],
               max_batch: int) -> Instances:  # fmt: skip
        predictor = loaded(serving, params["name"], params.get("version"))
        payload, binary = _split(body, headers)
        asked = decode(payload, binary, serving.validator.names, max_batch)
        specs = output_specs(predictor)
        unknown = [n for n in asked.outputs or [] if n not in specs]
        if unknown:
            raise bad(f"unknown outputs {unknown}; this model has {list(specs)}", "body.outputs")
        return Instances("v2", ("body", "instances"), matrix=asked.matrix, stored=asked.matrix, client_id=asked.id,
                         extra={"outputs": asked.outputs or list(specs)})  # fmt: skip

    @staticmethod
    def render(result: Result) -> bytes:
        predictor, instances = result.predictor, result.instances
        specs = output_specs(predictor)
        arrays = _arrays(result)
        parameters: dict[str, Any] = {"request_id": result.request_id}
        if result.warnings:
            parameters["warnings"] = "; ".join(result.warnings)
        answer = {"model_name": predictor.manifest.name, "model_version": predictor.version,
                  "id": instances.client_id if instances.client_id is not None else result.request_id,
                  "parameters": parameters,
                  "outputs": [{"name": n, "datatype": specs[n][0], "shape": list(arrays[n].shape),
                               "data": _flat(arrays[n])} for n in instances.extra["outputs"]]}  # fmt: skip
        return orjson.dumps(answer, option=NUMPY)

    @staticmethod
    def error(exc: ServiceError) -> tuple[int, bytes]:
        return kserve_error(exc)


V2 = OpenInferenceV2()


def _split(body: bytes, headers: Mapping[str, str]) -> tuple[Any, memoryview | None]:
    """The JSON header and, with Triton's binary tensor extension, the raw tensor bytes after it."""
    header_length = headers.get("inference-header-content-length")
    if header_length is None:
        return parse(body), None
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise MalformedJSON(f"Inference-Header-Content-Length must be 1 to {len(body)}, got {header_length!r}")
    return parse(body[: int(header_length)]), memoryview(body)[int(header_length) :]


def output_specs(predictor: ModelRunner) -> dict[str, tuple[str, list[int]]]:
    """Each output tensor's datatype and shape, as the model metadata route documents them."""
    if predictor.task != "classification":
        return {"prediction": ("FP64", [-1])}
    classes = np.asarray(predictor.estimator.classes_)
    kind = "INT64" if classes.dtype.kind in "iu" else "BYTES"
    return {"prediction": (kind, [-1]), "label": ("BYTES", [-1]), "probabilities": ("FP64", [-1, len(classes)])}


def _arrays(result: Result) -> dict[str, np.ndarray]:
    outputs, predictor = result.outputs, result.predictor
    if outputs.best is None:
        return {"prediction": outputs.values}
    return {
        "prediction": np.asarray(predictor.estimator.classes_)[outputs.best],
        "label": np.asarray(predictor.class_names, dtype=object)[outputs.best],
        "probabilities": outputs.values,
    }


def _flat(array: np.ndarray) -> Any:
    # orjson writes C-contiguous numeric arrays natively; labels go as a list of strings.
    if array.dtype.kind in "OUS":
        return [str(v) for v in array.reshape(-1).tolist()]
    return np.ascontiguousarray(array.reshape(-1), dtype=np.int64 if array.dtype.kind in "iub" else np.float64)
