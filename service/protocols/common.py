"""What the KServe protocols (v1 and v2) share: the served model's name check and the spec's error body."""

from __future__ import annotations

from typing import Any

import orjson

from service.core import Serving
from service.errors import ServiceError
from service.model_runner import ModelRunner


class ModelNotFound(ServiceError):
    status, code = 404, "model_not_found"


def loaded(serving: Serving, name: str, version: str | None) -> ModelRunner:
    """The served model, when `name` (and `version`, if given) name it; a 404 saying what is served otherwise."""
    predictor = serving.predictor
    served = predictor.manifest.name
    if name != served or version not in (None, predictor.version):
        asked = f"model {name!r}" + (f" version {version!r}" if version is not None else "")
        raise ModelNotFound(f"{asked} is not loaded; this server serves model {served!r} version "
                            f"{predictor.version!r}")  # fmt: skip
    return predictor


def kserve_error(exc: ServiceError) -> tuple[int, bytes]:
    """The KServe protocols' status and error object; a 422 of the shared validation is their 400."""
    body: dict[str, Any] = {"error": exc.message}
    if exc.details:
        body["details"] = exc.details
    return 400 if exc.status == 422 else exc.status, orjson.dumps(body)
