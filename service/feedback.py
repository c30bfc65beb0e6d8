"""POST /feedback: the true value of a logged prediction, kept in `labels` through the prediction log's durable path.

A label is checked against the served model's manifest: a number for a regression, one of its class names for
a classifier. A prediction logged by another model version takes a label too, when it was answered for the same
task (a classifier's outputs carry probabilities); a label is for the instance, not the version.

While Postgres answers, each label is checked against the log before the answer (404 unknown request_id, 422
index, 409 a different label already stored), then committed: 200. While it does not (the log spools), the label
is spooled, durable, and answered 202: it is checked when the spool is replayed, and one that fails then is
dropped and counted in `modelship_prediction_log_rejected_labels_total`.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from service.auth import require_scope
from service.body import check_media, json_media, parse, read_body
from service.core import Serving, require_serving
from service.errors import InvalidInput, LabelConflict, ServiceError, UnknownRequest, detail
from service.labels import Found, LabelRecord, lookup
from service.prediction_log import DB_ERRORS
from service.schemas import ErrorResponse
from service.validation import problems_message

router = APIRouter()
MAX_LABELS = 1000
SPOOLED = ("Postgres is unreachable: the labels are durable in the spool and are checked when it is replayed; "
           "one that fails then is dropped and counted in modelship_prediction_log_rejected_labels_total")  # fmt: skip


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # an index is an integer, not "2" or 2.0
    request_id: str = Field(min_length=1, max_length=200, description="X-Request-ID of the logged prediction")
    index: int | None = Field(None, ge=0, lt=2**31, description="the instance of a logged batch (0 for one)")
    label: JsonValue = Field(description="the true value: a number (regression) or a class name (classifier)")


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[Label] = Field(min_length=1, max_length=MAX_LABELS)


class FeedbackResult(BaseModel):
    status: str = Field(description="`stored` (200) or `accepted` (202: spooled, checked at replay)")
    labels: int = Field(description="labels in the body")
    stored: int = Field(description="labels committed by this request")
    unchanged: int = Field(description="labels already stored with the same value (a retry)")
    message: str | None = None


def request_body(task: str, classes: tuple[str, ...] | None) -> dict[str, Any]:
    """OpenAPI's requestBody for the served model (`service.app._openapi`): its label type, its class names."""
    label = {"type": "number"} if task == "regression" else {"type": "string", "enum": list(classes or ())}
    fields = {"request_id": {"type": "string", "minLength": 1, "maxLength": 200},
              "index": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "label": label}  # fmt: skip
    one = {"type": "object", "title": "Label", "required": ["request_id", "label"], "additionalProperties": False,
           "properties": fields}  # fmt: skip
    items = {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_LABELS}
    many = {"type": "object", "title": "Labels", "required": ["labels"], "additionalProperties": False,
            "properties": {"labels": items}}  # fmt: skip
    return {"required": True, "content": {"application/json": {"schema": {"anyOf": [one, many]}}}}


def _responses() -> dict[int | str, dict[str, Any]]:
    text = {
        202: "Postgres is down: the labels are spooled (durable) and checked at replay",
        400: "Malformed JSON", 401: "Missing or invalid API key", 403: "API key lacks the `feedback` scope",
        404: "No logged prediction has this request_id", 409: "A different label is already stored",
        413: "Request body too large", 415: "Content-Type is not application/json",
        422: "A bad label, index or body; `details` names each", 503: "The label cannot be made durable",
    }  # fmt: skip
    out: dict[int | str, dict[str, Any]] = {c: {"model": ErrorResponse, "description": t} for c, t in text.items()}
    out[200] = {"model": FeedbackResult, "description": "Every label is committed"}
    out[202] = {"model": FeedbackResult, "description": text[202]}
    return out


@router.post("/feedback", dependencies=[require_scope("feedback")], responses=_responses(),
             summary="Label logged predictions")  # fmt: skip
async def feedback(request: Request) -> Response:
    """`{"request_id", "label"}`, with `index` for a batch's instance, or `{"labels": [...]}`; a 2xx is durable."""
    state = request.app.state.modelship
    serving = require_serving(state.serving)
    check_media(request.headers, json_media)
    items = _items(parse(await read_body(request.headers, request.stream(), state.settings.max_body_bytes)))
    records = _records(serving, items)
    status, result = await _submit(serving, records, state.settings.request_timeout_s)
    return Response(orjson.dumps(result.model_dump(exclude_none=True)), status, media_type="application/json")


def _items(body: Any) -> list[tuple[tuple[Any, ...], Label]]:
    """The body's labels, each with where it is (for the problems' locations)."""
    many = isinstance(body, dict) and "labels" in body
    try:
        if many:
            return [(("body", "labels", i), x) for i, x in enumerate(Labels.model_validate(body).labels)]
        return [(("body",), Label.model_validate(body))]
    except ValidationError as exc:
        details = [detail(("body", *e["loc"]), e["msg"]) for e in exc.errors()]
        raise InvalidInput(problems_message(len(details), details), details) from None


def _records(serving: Serving, items: list[tuple[tuple[Any, ...], Label]]) -> list[tuple[tuple[Any, ...], Label]]:
    manifest = serving.predictor.manifest
    details = [d for loc, item in items if (d := _label_problem(manifest.task, manifest.classes, loc, item.label))]
    if details:
        raise InvalidInput(problems_message(len(details), details), details)
    return items


def _label_problem(task: str, classes: tuple[str, ...] | None, loc: tuple[Any, ...], value: Any) -> dict[str, Any]:
    where = (*loc, "label")
    if task == "regression":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return detail(where, f"this model is a regression: a label is a finite number, got {value!r}")
    elif not isinstance(value, str):
        return detail(where, f"this model is a classifier: a label is a class name ({', '.join(classes or ())}), "
                             f"got {value!r}")  # fmt: skip
    elif value not in (classes or ()):
        return detail(where, f"unknown class {value!r}; this model's classes are {', '.join(classes or ())}")
    return {}


async def _submit(serving: Serving, items: list[tuple[tuple[Any, ...], Label]], timeout: float) -> tuple[int, Any]:
    log, now = serving.log, time.time()
    keys = [(item.request_id, item.index or 0) for _, item in items]
    found = await _lookup(serving, keys) if log.db_ok else None
    if found is None:  # spooling (or Postgres went away just now): durable, checked at replay
        records = [_record(key, item, now) for key, (_, item) in zip(keys, items, strict=True)]
        await asyncio.gather(*(log.record(x, timeout) for x in records))
        return 202, FeedbackResult(status="accepted", labels=len(items), stored=0, unchanged=0, message=SPOOLED)
    classified = serving.predictor.manifest.task == "classification"
    _check(items, keys, found, classified)
    new = _new_labels(items, keys, found, now)
    await asyncio.gather(*(log.record(x, timeout) for x in new.values()))
    if new and (after := await _lookup(serving, list(new))) is not None:
        _check(items, keys, after, classified)  # a different label committed meanwhile by another request: 409
    return 200, FeedbackResult(status="stored", labels=len(items), stored=len(new), unchanged=len(items) - len(new))


async def _lookup(serving: Serving, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Found] | None:
    try:
        async with serving.log.reading() as conn:
            return await lookup(conn, sorted(set(keys)))
    except DB_ERRORS:
        return None


def _new_labels(items: list[tuple[tuple[Any, ...], Label]], keys: list[tuple[str, int]],
                found: dict[tuple[str, int], Found], now: float) -> dict[tuple[str, int], LabelRecord]:  # fmt: skip
    new: dict[tuple[str, int], LabelRecord] = {}
    for key, (_, item) in zip(keys, items, strict=True):
        if found[key].label is None and key not in new:
            new[key] = _record(key, item, now)
    return new


def _record(key: tuple[str, int], item: Label, now: float) -> LabelRecord:
    return LabelRecord(key[0], key[1], orjson.dumps(item.label).decode(), now)


def _check(items: list[tuple[tuple[Any, ...], Label]], keys: list[tuple[str, int]],
           found: dict[tuple[str, int], Found], classified: bool) -> None:  # fmt: skip
    """Raise the first kind of problem the labels have, every label of that kind in `details`."""
    for kind in (_unknown, _misplaced, _conflicting):
        problems: list[dict[str, Any]] = []
        error: type[ServiceError] | None = None
        seen: dict[tuple[str, int], Any] = {}
        for key, (loc, item) in zip(keys, items, strict=True):
            if (f := found.get(key)) is not None and (hit := kind(f, item, loc, classified, seen)):
                error, problem = hit
                problems.append(problem)
            seen.setdefault(key, item.label)
        if error is not None:
            raise error(problems_message(len(problems), problems), problems)


Hit = tuple[type[ServiceError], dict[str, Any]] | None


def _unknown(f: Found, item: Label, loc: tuple[Any, ...], classified: bool, seen: dict[Any, Any]) -> Hit:
    if f.logged:
        return None
    text = f"no logged prediction has request_id {f.request_id!r}: label a request /predict answered (its X-Request-ID)"
    return UnknownRequest, detail((*loc, "request_id"), text)


def _misplaced(f: Found, item: Label, loc: tuple[Any, ...], classified: bool, seen: dict[Any, Any]) -> Hit:
    if f.classified != classified:
        was, now = ("a classifier", "a regression") if f.classified else ("a regression", "a classifier")
        text = (f"request {f.request_id!r} was answered by {was} (model {f.model_version}); this service's model is "
                f"{now}, so its labels do not fit that prediction")  # fmt: skip
        return InvalidInput, detail((*loc, "request_id"), text)
    if item.index is None and f.instances > 1:
        text = f"request {f.request_id!r} logged a batch of {f.instances} instances: give `index` (0-{f.instances - 1})"
        return InvalidInput, detail((*loc, "index"), text)
    if f.index >= f.instances:
        held = "one instance (index 0)" if f.instances == 1 else f"{f.instances} instances (0-{f.instances - 1})"
        return InvalidInput, detail((*loc, "index"), f"index {f.index} is out of range: request {f.request_id!r} "
                                                     f"logged {held}")  # fmt: skip
    return None


def _conflicting(f: Found, item: Label, loc: tuple[Any, ...], classified: bool, seen: dict[Any, Any]) -> Hit:
    key = (f.request_id, f.index)
    before = f.label if f.label is not None else seen.get(key)
    if before is None or _same(before, item.label):
        return None
    text = (f"request {f.request_id!r} index {f.index} is already labelled {before!r}; this label is "
            f"{item.label!r}. A label is set once: send the same one to retry")  # fmt: skip
    return LabelConflict, detail((*loc, "label"), text)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values (1 and 1.0 are the same number; True is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)
