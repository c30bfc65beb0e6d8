"""The serving core: decode -> validate -> infer -> record, whatever the protocol.

kserve's DataPlane is the model: one protocol-neutral core, and transports that only translate. A
protocol (`service.protocols`: /predict, KServe v1, Open Inference Protocol v2) turns its wire format
into `Instances` and renders a `Result` or an error in its own terms; a transport (the pure-ASGI fast
path, or the FastAPI route that documents it) only carries bytes. Validation is the one rule set of
`service.validation`, every model call goes through the micro-batcher, and every answer is one
`LogRecord`, durable before the 2xx.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson

from service.auth import Authenticator
from service.body import check_media, read_body
from service.db import LogRecord
from service.drift import LiveDrift
from service.errors import BadHeader, Forbidden, NotReady, ServiceError, header_detail
from service.model_runner import ModelRunner, Outputs
from service.prediction_log import PredictionLog
from service.sources import LIVE, SOURCE, SOURCE_HEADER
from service.validation import InstanceValidator, values_in_order

if TYPE_CHECKING:
    from service.shadow import Shadow

NUMPY = orjson.OPT_SERIALIZE_NUMPY


def source_of(headers: Mapping[str, str], auth: Authenticator) -> str:
    """Where a request comes from: `live`, or what `X-Modelship-Source` names (smoke, loadcheck, bench, shadow).

    Marking traffic as synthetic hides it from the drift, quality and canary analyses, so where keys are on
    only a key with the `synthetic` scope may do it; an ordinary client's requests always count."""
    value = headers.get(SOURCE_HEADER.lower())
    if value is None or value == LIVE:
        return LIVE
    if not SOURCE.fullmatch(value):
        raise BadHeader(f"{SOURCE_HEADER} must be 1-32 characters from [a-z0-9_-], starting with a letter "
                        f"(e.g. smoke, loadcheck, bench), got {value[:40]!r}",
                        [header_detail(SOURCE_HEADER, "invalid format")])  # fmt: skip
    if auth.enabled:
        try:
            auth.require(headers, "synthetic")
        except Forbidden:
            raise Forbidden(f"marking traffic as {SOURCE_HEADER}: {value} needs an API key with the 'synthetic' "
                            "scope; send the request without the header to count it as live") from None  # fmt: skip
    return value


@dataclass(frozen=True, slots=True)
class Serving:
    """What start-up opened, set once in the lifespan: the service is ready to answer when this exists."""

    predictor: ModelRunner
    validator: InstanceValidator
    log: PredictionLog
    drift: LiveDrift | None = None  # the live per-bin counters; off (a no-op) without a drift reference
    shadow: Shadow | None = None  # the challenger scoring copies after the answer (service.shadow), if any


@dataclass(frozen=True, slots=True)
class Instances:
    """A request's instances as a protocol decoded them: JSON objects or a float64 matrix in feature order."""

    protocol: str  # stored with the record: predict, v1 or v2
    loc: tuple[Any, ...]  # where the instances are in the body, for the problems' locations
    objects: list[Any] | None = None  # keyed by feature name (/predict)
    matrix: np.ndarray | None = None  # rows in the manifest's feature order (v1, v2)
    single: bool = False  # one instance, answered and stored as an object rather than a batch
    stored: Any = None  # the rows as the log keeps them, when not the objects' values (v1's lists, v2's matrix)
    client_id: str | None = None  # v2's request `id`, kept with the inputs
    extra: dict[str, Any] = field(default_factory=dict)  # what only the protocol reads back (v2's outputs asked)


@dataclass(frozen=True, slots=True)
class Result:
    request_id: str
    predictor: ModelRunner
    instances: Instances
    outputs: Outputs
    warnings: list[str]
    source: str = LIVE


class WireProtocol(Protocol):
    """What a protocol implements; the core and the transports need nothing else of it."""

    name: str

    def media_ok(self, media: str) -> bool: ...

    def decode(self, serving: Serving, body: bytes, headers: Mapping[str, str], params: Mapping[str, str],
               max_batch: int) -> Instances: ...  # fmt: skip

    def render(self, result: Result) -> bytes: ...

    def error(self, exc: ServiceError) -> tuple[int, bytes]: ...


def require_serving(serving: Serving | None) -> Serving:
    if serving is None:
        raise NotReady("the model is not loaded yet")
    return serving


async def answer(
    state: Any, protocol: WireProtocol, headers: Mapping[str, str], chunks: AsyncIterator[bytes],
    params: Mapping[str, str], request_id: str, started: float,
) -> bytes:  # fmt: skip
    """One request through the core: the 200's body, or a ServiceError naming what was wrong.

    `state` is the AppState. The API key was checked before, by the route's declared dependency or by the
    fast path with the same scopes."""
    serving = require_serving(state.serving)
    settings = state.settings
    source = source_of(headers, state.auth)
    check_media(headers, protocol.media_ok)
    body = await read_body(headers, chunks, settings.max_body_bytes)
    instances = protocol.decode(serving, body, headers, params, settings.max_batch)
    validator = serving.validator
    if instances.objects is not None:
        checked = validator.check_objects(instances.objects, instances.loc, not instances.single)
        matrix, warnings = checked.matrix, checked.warnings
    else:
        assert instances.matrix is not None  # nosec B101 # every protocol gives one or the other
        matrix, warnings = instances.matrix, validator.check_matrix(instances.matrix, instances.loc)
    outputs = await serving.predictor.predict(matrix)
    state.count_predictions(len(outputs), source)
    if source == LIVE and serving.drift is not None:  # synthetic traffic would bias the live distribution
        serving.drift.count(matrix, outputs)
    result = Result(request_id, serving.predictor, instances, outputs, warnings, source)
    latency_ms = (time.perf_counter() - started) * 1000
    await serving.log.record(record_of(result, validator.names, latency_ms), settings.request_timeout_s)
    if serving.shadow is not None:  # after the answer is durable; O(1), never raises, never changes it
        serving.shadow.offer(result, matrix)
    return protocol.render(result)


# -- the one shape of a logged answer --------------------------------------------------------------
def record_of(result: Result, names: list[str], latency_ms: float) -> LogRecord:
    """One request's row: a single instance as its object and answer, a batch as rows and columns."""
    instances, predictor = result.instances, result.predictor
    if instances.single and instances.objects is not None:
        inputs, outputs = orjson.dumps(instances.objects[0]), orjson.dumps(output_objects(result)[0])
    else:
        stored = instances.stored if instances.stored is not None else _object_rows(instances.objects, names)
        logged: dict[str, Any] = {"protocol": instances.protocol, "features": names, "instances": stored}
        if instances.client_id is not None:
            logged["id"] = instances.client_id
        inputs = orjson.dumps(logged, option=NUMPY)
        outputs = orjson.dumps(_columns(result, instances.protocol), option=NUMPY)
    return LogRecord(result.request_id, predictor.version, inputs.decode(), outputs.decode(), latency_ms, time.time(),
                     result.source)  # fmt: skip


def _object_rows(objects: list[Any] | None, names: list[str]) -> list[tuple[Any, ...]]:
    return list(map(values_in_order(names), objects or []))  # tuples, which orjson writes as arrays


def _columns(result: Result, protocol: str) -> dict[str, Any]:
    outputs, predictor = result.outputs, result.predictor
    if outputs.best is None:
        return {"protocol": protocol, "columns": {"prediction": outputs.values}}
    names = predictor.class_names
    labels = [names[b] for b in outputs.best.tolist()]
    return {"protocol": protocol, "classes": names, "columns": {"prediction": labels, "probabilities": outputs.values}}


def output_objects(result: Result) -> list[dict[str, Any]]:
    """Each instance's answer as an object: `{"prediction": v}`, plus `probabilities` by class name."""
    outputs = result.outputs
    if outputs.best is None:
        return [{"prediction": v} for v in outputs.values.tolist()]
    names = result.predictor.class_names
    return [{"prediction": names[b], "probabilities": dict(zip(names, p, strict=True))}
            for b, p in zip(outputs.best.tolist(), outputs.values.tolist(), strict=True)]  # fmt: skip
