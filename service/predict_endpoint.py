"""POST /predict: one core, served by a pure-ASGI endpoint on the hot path.

FastAPI's routing, request object and exception layers cost about ten times the raw ASGI floor per
request (measured by `make bench`). `/predict` is the one route where that matters, so
`PredictEndpoint` answers it straight from ASGI; the FastAPI route of the same path documents it in
OpenAPI and runs the same `predict` core. Every other route goes through FastAPI as usual.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from service.columnar import check_instances
from service.db import LogRecord, batch_inputs, batch_outputs
from service.errors import (
    BodyTooLarge,
    InvalidInput,
    MalformedJSON,
    NotReady,
    ServiceError,
    UnsupportedMediaType,
    detail,
    header_detail,
)
from service.state import AppState
from service.validation import kind_of

JSON_HEADERS = [(b"content-type", b"application/json")]


async def predict(
    state: AppState, headers: Mapping[str, str], chunks: AsyncIterator[bytes], request_id: str, started: float
) -> bytes:
    """Answer one /predict request: JSON bytes of a 200, or a ServiceError naming what was wrong.

    The API key is checked before, by the route's declared dependency or by `PredictEndpoint`."""
    predictor, validator, log = state.predictor, state.validator, state.log
    if predictor is None or validator is None or log is None:
        raise NotReady("the model is not loaded yet")
    payload = parse(await read_body(headers, chunks, state.settings.max_body_bytes))
    instances, batch, echo = split_instances(payload, validator.names, state.settings.max_batch)
    checked = (
        check_instances(validator, instances, ("body", "instances")) if batch else validator.check(instances, ("body",))
    )
    outputs = await predictor.predict(checked.rows)
    state.count_predictions(len(outputs))
    if batch:
        body: dict[str, Any] = {"predictions": outputs, "count": len(outputs)}
        logged_in, logged_out = batch_inputs(validator.names, instances), batch_outputs(outputs)
    else:
        body = {**outputs[0], "input": echo}
        logged_in, logged_out = orjson.dumps(echo).decode(), orjson.dumps(outputs[0]).decode()
    body["model_version"] = predictor.version
    body["request_id"] = request_id
    if checked.warnings:
        body["warnings"] = checked.warnings
    latency_ms = (time.perf_counter() - started) * 1000
    row = LogRecord(request_id, predictor.version, logged_in, logged_out, latency_ms, time.time())
    await log.record(row, state.settings.request_timeout_s)
    return orjson.dumps(body)


class PredictEndpoint:
    """ASGI middleware that serves POST /predict itself and passes everything else on.

    `scopes` are the ones the FastAPI route of POST /predict declares (`auth.declared_scopes`)."""

    def __init__(self, app: ASGIApp, state: AppState, scopes: tuple[str, ...]) -> None:
        self.app = app
        self.state = state
        self.scopes = scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            self.state.auth.require(headers, *self.scopes)
            body = await predict(self.state, headers, _chunks(receive), scope["state"]["request_id"], started)
            status, extra = 200, JSON_HEADERS
        except ServiceError as exc:
            status, body, extra = exc.status, orjson.dumps(exc.body()), error_headers(exc)
        except _Disconnected:
            return
        await respond(send, status, body, extra)


def error_headers(exc: ServiceError) -> list[tuple[bytes, bytes]]:
    """A JSON error's headers: the content type, and the error's own (WWW-Authenticate, Retry-After)."""
    return JSON_HEADERS + [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """A whole answer of a fast-path endpoint: its head with Content-Length, then its body."""
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class _Disconnected(Exception):
    pass


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def read_body(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
            [header_detail("Content-Type", "must be application/json")],
        )
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} (MODELSHIP_MAX_BODY_BYTES)")
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes (MODELSHIP_MAX_BODY_BYTES)")
        parts.append(chunk)
    return b"".join(parts)


def parse(body: bytes) -> Any:
    if not body:
        raise MalformedJSON("the body is empty; send a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson refuses NaN, Infinity and integers beyond 64 bits. The standard parser accepts
        # them, so validation can name the field instead of pointing at a byte offset.
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedJSON(f"the body is not valid JSON: {exc}") from None
    if _may_repeat_a_key(body, payload):
        _reject_duplicate_keys(body)
    return payload


def _may_repeat_a_key(body: bytes, payload: Any) -> bool:
    """False when no object of `body` can repeat a key; True sends it through the exact check.

    orjson keeps the last of repeated keys silently. Every key is followed by a colon, so when orjson's
    own re-encoding of `payload` holds as many colons as `body`, no key was lost. Without a backslash
    in the body, every string re-encodes to the same bytes and so holds the same colons, and that
    comparison is exact; it runs in C, where counting keys value by value in Python cost a tenth of a
    batch request. With a backslash (an escape can spell a colon), or a payload orjson cannot encode
    (integers beyond 64 bits, nesting past its depth limit), keys are counted one by one.
    """
    colons = body.count(b":")
    if not colons:
        return False
    if b"\\" not in body:
        with contextlib.suppress(orjson.JSONEncodeError):
            return colons > orjson.dumps(payload).count(b":")
    return colons > _count_keys(payload)


def _count_keys(value: Any) -> int:
    # Iterative: orjson accepts nesting up to 1024 levels, deeper than Python's recursion limit.
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _reject_duplicate_keys(body: bytes) -> None:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(
                    f"the field {key!r} appears more than once in one object",
                    [detail(["body", key], "duplicate key")],
                )
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(body, object_pairs_hook=hook)
    except InvalidInput:
        raise
    except RecursionError:
        # Valid JSON that orjson took, but too deep for the standard parser the duplicate check needs.
        raise MalformedJSON("the body nests too deeply to check; an instance needs 2 levels") from None
    except ValueError as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}") from None


def _invalid(field: str, problem: str, message: str) -> InvalidInput:
    return InvalidInput(message, [detail(["body", field], problem)])


def split_instances(payload: Any, names: list[str], max_batch: int) -> tuple[list[Any], bool, Any]:
    """Return (instances, is_batch, the single instance to echo)."""
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
        return instances, True, None
    if set(payload) == {"input"} and isinstance(payload["input"], list):
        # The positional form of the iris tutorial: {"input": [5.1, 3.5, 1.4, 0.2]}.
        values = payload["input"]
        if len(values) != len(names):
            problem = f"must hold {len(names)} values in the order {names}, got {len(values)}"
            raise _invalid("input", problem, f"input {problem}")
        instance = dict(zip(names, values, strict=True))
        return [instance], False, instance
    return [payload], False, payload
