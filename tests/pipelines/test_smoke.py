"""Smoke checks against a scripted service (httpx.MockTransport); the e2e test runs them for real."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from model.artifact import load_manifest
from pipelines.smoke import SEED_EXAMPLES, example_requests, smoke, valid_prediction

Handler = Callable[[httpx.Request], httpx.Response]


def scripted_service(
    manifest: dict[str, Any],
    predict: Callable[[dict[str, Any]], Any] = lambda row: 123.0,
    reject_bad: bool = True,
    ready: int = 200,
) -> Handler:
    names = {f["name"] for f in manifest["features"]}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ready":
            return httpx.Response(ready, json={"status": "ready" if ready == 200 else "not_ready"})
        if request.url.path == "/model":
            return httpx.Response(200, json=manifest)
        body = json.loads(request.content)
        rows = body["instances"] if "instances" in body else [body]
        bad = any(set(r) != names or not all(isinstance(v, int | float) for v in r.values()) for r in rows)
        if bad and reject_bad:
            return httpx.Response(422, json={"error": "validation_error"})
        version = manifest["version"]
        if "instances" in body:
            items = [{"prediction": predict(r)} for r in rows]
            return httpx.Response(
                200, json={"predictions": items, "count": len(items), "model_version": version, "request_id": "r"}
            )
        return httpx.Response(
            200, json={"prediction": predict(body), "input": body, "model_version": version, "request_id": "r"}
        )

    return handle


def run(handler: Handler, expected: str | None, **kwargs: Any) -> Any:
    def factory(base: str) -> httpx.Client:
        return httpx.Client(base_url=base, transport=httpx.MockTransport(handler))

    return smoke("http://svc", expected, client_factory=factory, ready_wait_s=0, **kwargs)


@pytest.fixture(scope="module")
def manifest(v1_artifact: Path) -> dict[str, Any]:
    return load_manifest(v1_artifact).to_dict()  # as GET /model serves it


def test_healthy_service_passes_every_check(manifest: dict[str, Any]) -> None:
    result = run(scripted_service(manifest), manifest["version"])
    assert result.passed, result.summary()
    names = [c.name for c in result.checks]
    assert names[:2] == ["/ready", "/model version"]
    assert [n for n in names if n.startswith("predict")] == [f"predict {e}" for e in SEED_EXAMPLES]
    assert "batch of 3" in names and "bad request gets 422" in names
    assert result.served_version == manifest["version"]


def test_wrong_version_fails(manifest: dict[str, Any]) -> None:
    result = run(scripted_service(manifest), "house-price-000000000000")
    assert not result.passed
    assert "expected house-price-000000000000" in result.summary()


def test_invalid_predictions_fail(manifest: dict[str, Any]) -> None:
    # orjson turns a NaN prediction into null; a string or a boolean is not a price either
    for answer in (None, "cheap", True):
        result = run(scripted_service(manifest, predict=lambda row, a=answer: a), None)
        assert not result.passed
        assert {c.name for c in result.checks if not c.passed} >= {"batch of 3"}


def test_accepting_garbage_fails(manifest: dict[str, Any]) -> None:
    result = run(scripted_service(manifest, reject_bad=False), None)
    assert [c.name for c in result.checks if not c.passed] == ["bad request gets 422"]


def test_not_ready_stops_early(manifest: dict[str, Any]) -> None:
    result = run(scripted_service(manifest, ready=503), None)
    assert not result.passed and [c.name for c in result.checks] == ["/ready"]


def test_unreachable_service_fails_cleanly() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = run(refuse, None)
    assert not result.passed and "ConnectError" in result.checks[0].detail


def test_api_key_is_sent(manifest: dict[str, Any]) -> None:
    seen: list[str | None] = []
    inner = scripted_service(manifest)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return inner(request)

    assert run(handler, None, api_key="k-123").passed
    assert set(seen) == {"Bearer k-123"}


def test_examples_for_another_model(iris_artifact: Path) -> None:
    iris = load_manifest(iris_artifact)
    rows = example_requests(iris)
    assert len(rows) == 1 and set(rows[0]) == set(iris.feature_names)
    assert valid_prediction("setosa", iris) and not valid_prediction("rose", iris)
    assert not valid_prediction(True, iris.model_copy(update={"task": "regression"}))
