"""Domain errors, each mapped once to a status code and a JSON body that says what to fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def detail(loc: Sequence[str | int], problem: str, field: str | None = None) -> dict[str, Any]:
    """One entry of an error's `details`: where it is (`loc`), the field a person reads, and what is wrong.

    The field defaults to the dotted path below the location's root: `body.instances.0.size` names
    `instances.0.size`; a bare root (`body`, `query`) names itself."""
    where = list(loc)
    named = field if field is not None else ".".join(str(part) for part in where[1:]) or str(where[0])
    return {"loc": where, "field": named, "problem": problem}


def header_detail(name: str, problem: str) -> dict[str, Any]:
    """A bad request header: located by its lower-case name, named as people spell it (`Content-Type`)."""
    return detail(["header", name.lower()], problem, field=name)


def summary(details: Sequence[dict[str, Any]]) -> str:
    """`field: problem; field: problem`, for the one-line message above the details."""
    return "; ".join(f"{d['field']}: {d['problem']}" for d in details)


class ServiceError(Exception):
    status = 500
    code = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class MalformedJSON(ServiceError):
    status, code = 400, "malformed_json"


class BadHeader(ServiceError):
    status, code = 400, "bad_header"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="modelship"'}


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class BodyTooLarge(ServiceError):
    status, code = 413, "body_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class InvalidInput(ServiceError):
    status, code = 422, "validation_error"


class UnknownRequest(ServiceError):
    """POST /feedback labels a request_id the log does not hold."""

    status, code = 404, "unknown_request_id"


class LabelConflict(ServiceError):
    """POST /feedback gives a label other than the one stored for that instance."""

    status, code = 409, "label_conflict"


class LogUnavailable(ServiceError):
    """The prediction cannot be made durable, so it is not acknowledged."""

    status, code = 503, "prediction_log_unavailable"
    headers = {"Retry-After": "5"}


class DatabaseUnavailable(ServiceError):
    status, code = 503, "database_unavailable"
    headers = {"Retry-After": "5"}


class NotReady(ServiceError):
    status, code = 503, "not_ready"
    headers = {"Retry-After": "2"}
