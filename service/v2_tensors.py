"""Open Inference Protocol v2 request tensors -> one float64 matrix in the manifest's feature order.

The spec (kserve/open-inference-protocol, specification/protocol/inference_rest.md, "Inference
Request JSON Object" and "Tensor Data") sends each input as {name, shape, datatype, data} with
row-major data, flat or nested. Two layouts are accepted: one `[N, n_features]` tensor in feature
order, or one `[N]` (or `[N, 1]`) tensor per feature, named after it. Tensor data may also follow
the JSON header as raw little-endian bytes: Triton's binary tensor data extension, which
`tritonclient.http` uses by default (tritonclient/http/_utils.py `_get_inference_request` appends
each input's bytes after the JSON and sends its length in `Inference-Header-Content-Length`; each
such input carries `parameters.binary_data_size`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInput, detail

DATATYPES: dict[str, type[np.generic]] = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32,
                                          "INT64": np.int64}  # fmt: skip


@dataclass(frozen=True)
class Request:
    id: str | None
    matrix: np.ndarray  # float64, [N, n_features], C order
    outputs: list[str] | None  # names asked for; None means all


def bad(message: str, where: str = "body") -> InvalidInput:
    """A 400 in the v2 routes; `where` is the dotted place in the body, e.g. body.inputs.0.shape."""
    return InvalidInput(message, [detail(where.split("."), message)])


def decode(payload: Any, binary: memoryview | None, names: list[str], max_batch: int) -> Request:
    """Check the request object and turn its inputs into the model's matrix."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise bad('the body must be an inference request object: {"inputs": [{"name", "shape", "datatype", '
                  '"data"}, ...]}')  # fmt: skip
    request_id = payload.get("id")
    if "id" in payload and not isinstance(request_id, str):  # an explicit null too: the schema says string
        raise bad(f"id must be a string, got {type(request_id).__name__}", "body.id")
    if "parameters" in payload and not isinstance(payload["parameters"], dict):
        raise bad("parameters must be an object", "body.parameters")
    tensors = _tensors(payload["inputs"], binary)
    if all(name in names for name, _ in tensors):
        matrix = _by_feature(tensors, names)
    elif len(tensors) == 1:
        matrix = _matrix(*tensors[0], len(names))
    else:
        raise bad(f"send one [N, {len(names)}] tensor in the order {names}, or one [N] tensor per feature named "
                  f"after it; got inputs {[n for n, _ in tensors]}", "body.inputs")  # fmt: skip
    if not 1 <= len(matrix) <= max_batch:
        raise bad(f"a request holds 1 to {max_batch} instances, got {len(matrix)} (MODELSHIP_MAX_BATCH)",
                  "body.inputs")  # fmt: skip
    return Request(request_id, matrix, _requested(payload["outputs"]) if "outputs" in payload else None)


def _tensors(inputs: list[Any], binary: memoryview | None) -> list[tuple[str, np.ndarray]]:
    tensors, seen, offset = [], set(), 0
    for k, item in enumerate(inputs):
        name, shape, dtype, data, size = _header(item, k)
        if name in seen:
            raise bad(f"input {name!r} appears more than once", f"body.inputs.{k}.name")
        seen.add(name)
        if size is not None:
            if binary is None or offset + size > len(binary):
                raise bad(f"input {name!r} declares binary_data_size {size}, but the body holds fewer bytes after "
                          "the JSON header (Inference-Header-Content-Length)", f"body.inputs.{k}")  # fmt: skip
            array = _from_bytes(binary[offset : offset + size], dtype, shape, name, k)
            offset += size
        else:
            array = _from_json(data, dtype, shape, name, k)
        tensors.append((name, array))
    if binary is not None and offset != len(binary):
        raise bad(f"{len(binary) - offset} bytes after the JSON header belong to no input", "body.inputs")
    return tensors


def _header(item: Any, index: int) -> tuple[str, list[int], np.dtype[Any], Any, int | None]:
    where = f"body.inputs.{index}"
    if not isinstance(item, dict):
        raise bad("each input must be an object {name, shape, datatype, data}", where)
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str):
        raise bad("name must be a string", f"{where}.name")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}", f"{where}.shape")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise bad(f"input {name!r}: datatype must be one of {sorted(DATATYPES)}, got {datatype!r}",
                  f"{where}.datatype")  # fmt: skip
    parameters = item.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise bad(f"input {name!r}: parameters must be an object", f"{where}.parameters")
    size = parameters.get("binary_data_size")
    if size is not None and (type(size) is not int or size < 0):
        raise bad(f"input {name!r}: binary_data_size must be a non-negative integer", f"{where}.parameters")
    if size is None and not isinstance(item.get("data"), list):
        raise bad(f"input {name!r}: data must be an array (row-major, flat or nested)", f"{where}.data")
    return name, shape, np.dtype(DATATYPES[datatype]), item.get("data"), size


def _from_json(data: list[Any], dtype: np.dtype[Any], shape: list[int], name: str, index: int) -> np.ndarray:
    where = f"body.inputs.{index}.data"
    try:
        raw = np.asarray(data)  # no dtype: strings, booleans and ragged nesting must not be coerced
    except (ValueError, OverflowError, TypeError, RecursionError):
        raise bad(f"input {name!r}: data must be numbers in a regular (not ragged) nesting", where) from None
    kind = raw.dtype.kind
    if raw.size and (kind not in "iuf" or (dtype.kind == "i" and kind == "f")):
        got = {"b": "booleans", "U": "strings", "O": "mixed or out-of-range values"}.get(kind, "numbers with "
                                                                                              "fractions")  # fmt: skip
        raise bad(f"input {name!r}: datatype {_name(dtype)} needs {_kind(dtype)}, got {got}", where)
    if dtype.kind == "i" and raw.size and (raw.min() < np.iinfo(dtype).min or raw.max() > np.iinfo(dtype).max):
        raise bad(f"input {name!r}: a value does not fit {_name(dtype)}", where)
    return _shaped(raw.astype(dtype, copy=False).reshape(-1), shape, name, where)


def _from_bytes(chunk: memoryview, dtype: np.dtype[Any], shape: list[int], name: str, index: int) -> np.ndarray:
    if len(chunk) % dtype.itemsize:
        raise bad(f"input {name!r}: {len(chunk)} bytes is not a whole number of {_name(dtype)} values",
                  f"body.inputs.{index}")  # fmt: skip
    return _shaped(np.frombuffer(chunk, dtype=dtype.newbyteorder("<")), shape, name, f"body.inputs.{index}")


def _shaped(flat: np.ndarray, shape: list[int], name: str, where: str) -> np.ndarray:
    if math.prod(shape) != flat.size:
        raise bad(f"input {name!r}: shape {shape} holds {math.prod(shape)} values, data holds {flat.size}", where)
    return flat.reshape(shape)


def _matrix(name: str, tensor: np.ndarray, width: int) -> np.ndarray:
    if tensor.ndim != 2 or tensor.shape[1] != width:
        raise bad(f"input {name!r}: expected shape [N, {width}], got {list(tensor.shape)}", "body.inputs.0.shape")
    return np.ascontiguousarray(tensor, dtype=np.float64)


def _by_feature(tensors: list[tuple[str, np.ndarray]], names: list[str]) -> np.ndarray:
    given = dict(tensors)
    missing = [n for n in names if n not in given]
    if missing:
        raise bad(f"missing inputs {missing}; one [N] tensor per feature: {names}", "body.inputs")
    columns = []
    for name in names:
        tensor = given[name]
        if tensor.ndim == 2 and tensor.shape[1] == 1:
            tensor = tensor[:, 0]
        if tensor.ndim != 1:
            raise bad(f"input {name!r}: expected shape [N] or [N, 1], got {list(tensor.shape)}", "body.inputs")
        columns.append(tensor)
    if len({len(c) for c in columns}) != 1:
        raise bad(f"inputs hold different counts {[len(c) for c in columns]}; each needs N values", "body.inputs")
    return np.column_stack(columns).astype(np.float64, copy=False)


def _requested(outputs: Any) -> list[str]:
    """The outputs a request names; an explicit null is refused like any other non-list (the schema's rule)."""
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):  # fmt: skip
        raise bad('outputs must be a list of {"name": ...} objects', "body.outputs")
    return [o["name"] for o in outputs]


def _name(dtype: np.dtype[Any]) -> str:
    return next(k for k, v in DATATYPES.items() if np.dtype(v) == dtype)


def _kind(dtype: np.dtype[Any]) -> str:
    return "integers" if dtype.kind == "i" else "numbers"
