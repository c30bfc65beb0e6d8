"""Every route and every error path, in-process, against a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.body import parse
from service.errors import InvalidInput
from tests.conftest import SEED_REQUESTS


def post(client: TestClient, body: object, **headers: str) -> object:
    return client.post("/predict", content=json.dumps(body), headers={"content-type": "application/json", **headers})


def test_seed_requests_answer_like_the_tutorial_plus_version_and_id(client: TestClient) -> None:
    for body in SEED_REQUESTS:
        response = client.post("/predict", json=body)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["input"] == body
        assert isinstance(data["prediction"], float)
        expected = body["size"] * 100 + body["bedrooms"] * 5000 - body["age"] * 1000
        assert abs(data["prediction"] - expected) < 15_000  # the synthetic relationships hold
        assert data["model_version"].startswith("house-price-")
        assert response.headers["x-request-id"] == data["request_id"]


def test_batch_answers_in_one_response_and_is_logged(client: TestClient) -> None:
    rid = uuid.uuid4().hex
    response = client.post("/predict", json={"instances": SEED_REQUESTS}, headers={"x-request-id": rid})
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 3 and len(data["predictions"]) == 3 and data["request_id"] == rid
    singles = [client.post("/predict", json=b).json()["prediction"] for b in SEED_REQUESTS]
    assert [p["prediction"] for p in data["predictions"]] == singles
    rows = client.get("/predictions", params={"limit": 50}).json()["predictions"]
    logged = next(r for r in rows if r["request_id"] == rid)
    assert logged["inputs"] == SEED_REQUESTS and len(logged["outputs"]) == 3


def test_predictions_are_newest_first_and_paginate(client: TestClient) -> None:
    ids = []
    for _ in range(5):
        rid = uuid.uuid4().hex
        assert client.post("/predict", json=SEED_REQUESTS[0], headers={"x-request-id": rid}).status_code == 200
        ids.append(rid)
    page = client.get("/predictions", params={"limit": 3}).json()
    assert [r["request_id"] for r in page["predictions"]] == ids[::-1][:3]
    older = client.get("/predictions", params={"limit": 2, "before": page["next_before"]}).json()
    assert [r["request_id"] for r in older["predictions"]] == ids[::-1][3:5]
    row = page["predictions"][0]
    assert set(row) == {"id", "request_id", "model_version", "source", "inputs", "outputs", "latency_ms", "created_at"}
    assert row["source"] == "live"


def test_client_request_id_is_an_idempotency_key(client: TestClient) -> None:
    rid = uuid.uuid4().hex
    for _ in range(2):
        assert client.post("/predict", json=SEED_REQUESTS[0], headers={"x-request-id": rid}).status_code == 200
    rows = client.get("/predictions", params={"limit": 20}).json()["predictions"]
    assert [r["request_id"] for r in rows].count(rid) == 1


def test_iris_answers_label_and_probabilities(make_client: Callable[..., TestClient], iris_artifact: Path) -> None:
    client = make_client(iris_artifact)
    body = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    data = client.post("/predict", json=body).json()
    assert data["prediction"] == "setosa"
    assert set(data["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert abs(sum(data["probabilities"].values()) - 1) < 1e-6
    positional = client.post("/predict", json={"input": [6.7, 3.0, 5.2, 2.3]}).json()  # seed 003's form
    assert positional["prediction"] == "virginica" and positional["input"]["petal_width"] == 2.3
    assert "sepal_length" in client.get("/openapi.json").json()["components"]["schemas"]["Instance"]["properties"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"size": 2500, "bedrooms": 3}, "age", "missing"),
        ({"size": 2500, "bedrooms": 3, "age": 10, "pool": True}, "pool", "unknown field"),
        ({"size": "2500", "bedrooms": 3, "age": 10}, "size", "got string"),
        ({"size": 2500, "bedrooms": 3.5, "age": 10}, "bedrooms", "integer"),
        ({"size": 2500, "bedrooms": True, "age": 10}, "bedrooms", "boolean"),
        ({"size": 99_999, "bedrooms": 3, "age": 10}, "size", "outside the range"),
        ({"size": 10**30, "bedrooms": 3, "age": 10}, "size", "outside"),
        ({"instances": []}, "instances", "1 to 1000"),
        ({"instances": [{"size": 1, "bedrooms": 1, "age": 1}, {"size": 1}]}, "instances.1.bedrooms", "missing"),
        ({"instances": "all"}, "instances", "array"),
        ([1, 2, 3], "body", "JSON object"),
        ({"ñámé": 1, "size": 2500, "bedrooms": 3, "age": 10}, "ñámé", "unknown field"),
    ],
)
def test_invalid_bodies_get_422_naming_the_field(client: TestClient, body: object, field: str, fragment: str) -> None:
    response = post(client, body)
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["error"] == "validation_error"
    assert any(d["field"] == field and fragment in d["problem"] for d in data["details"]), data


@pytest.mark.parametrize(
    "raw", [b'{"size": NaN, "bedrooms": 3, "age": 10}', b'{"size": Infinity, "bedrooms": 3, "age": 1}']
)
def test_nan_and_infinity_are_named(client: TestClient, raw: bytes) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "size"


@pytest.mark.parametrize("depth", [1000, 1023, 1025, 5000])
def test_deep_nesting_within_the_body_limit_is_a_clear_4xx(make_client: Callable[..., TestClient], depth: int) -> None:
    """The body limit is out of the way, so the parser itself meets the nesting (1000 levels once gave a 500)."""
    client = make_client(max_body_bytes=64 * 1024)
    headers = {"content-type": "application/json"}
    bare = client.post("/predict", content=b"[" * depth + b"]" * depth, headers=headers)
    # A string holding a colon sends the body through the duplicate-key check, a second parser.
    keyed = b'{"size": ' + b"[" * depth + b"]" * depth + b', "a": "x:y"}'
    in_object = client.post("/predict", content=keyed, headers=headers)
    # Whether the standard parser (the fallback and the duplicate check) gets this deep depends on the
    # interpreter's recursion headroom at that moment, so either clear answer is right; a 500 never is.
    expected = {400: "malformed_json", 422: "validation_error"}
    for response in (bare, in_object):
        assert response.status_code in expected, (depth, response.status_code, response.text[:300])
        assert response.json()["error"] == expected[response.status_code] and response.json()["message"]
    assert "JSON object" in bare.json()["message"] or "depth" in bare.json()["message"], bare.text[:300]
    message = in_object.json()["message"]
    assert "size" in message or "too deeply" in message or "depth" in message, message[:300]


def test_malformed_json_wrong_type_and_oversize(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2048, max_batch=5)
    bad = client.post("/predict", content=b'{"size": 25', headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"] == "malformed_json"
    deep = client.post("/predict", content=b"[" * 1000 + b"]" * 1000, headers={"content-type": "application/json"})
    assert deep.status_code == 422 and deep.json()["error"] == "validation_error", deep.text
    wrong = client.post("/predict", content=b"size=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert wrong.status_code == 415 and "application/json" in wrong.json()["message"]
    assert client.post("/predict", content=b"{}").status_code == 415
    huge = client.post("/predict", content=b" " * 4096, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "2048" in huge.json()["message"]
    batch = post(client, {"instances": [SEED_REQUESTS[0]] * 6})
    assert batch.status_code == 422 and "1 to 5" in batch.json()["message"]
    dup = client.post(
        "/predict",
        content=b'{"size": 1, "size": 2, "bedrooms": 3, "age": 4}',
        headers={"content-type": "application/json"},
    )
    assert dup.status_code == 422 and dup.json()["details"][0]["problem"] == "duplicate key"
    bad_id = post(client, SEED_REQUESTS[0], **{"x-request-id": "no spaces allowed"})
    assert bad_id.status_code == 400


def test_flag_policy_accepts_out_of_range_with_a_warning(make_client: Callable[..., TestClient]) -> None:
    client = make_client(range_policy="flag")
    data = client.post("/predict", json={"size": 99_999, "bedrooms": 3, "age": 10}).json()
    assert "prediction" in data and "size" in data["warnings"][0]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": -1}, "limit"), ({"limit": 10**9}, "limit"), ({"before": "x"}, "before"), ({"limit": "ten"}, "limit")],
)
def test_predictions_parameters_are_validated(client: TestClient, params: dict[str, object], field: str) -> None:
    response = client.get("/predictions", params=params)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field


def test_probes_model_index_and_unknown_routes(client: TestClient, house_artifact: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["checks"]["database_reachable"]
    manifest = client.get("/model").json()
    assert manifest == json.loads((house_artifact / "manifest.json").read_text())
    index = client.get("/").json()
    assert "POST /predict" in index["endpoints"] and index["docs"] == "/docs"
    assert client.get("/train").status_code == 404
    assert client.post("/train").json()["error"] in ("not_found", "method_not_allowed")
    assert client.get("/predict").status_code == 405


def test_the_index_lists_every_documented_route_with_its_declared_scope(client: TestClient) -> None:
    """The index is read from the app's routes, so a new route appears there without being listed by hand."""
    spec = client.get("/openapi.json").json()
    endpoints = client.get("/").json()["endpoints"]
    assert set(endpoints) == {f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops}
    assert endpoints["GET /predictions"] == "Logged predictions, newest first (API key scope: read)"
    assert endpoints["POST /v2/models/{name}/infer"] == "Infer (API key scope: predict)"
    assert endpoints["GET /health"] == "Liveness"


def test_openapi_documents_the_loaded_models_fields_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    instance = spec["components"]["schemas"]["Instance"]
    assert (
        instance["required"] == ["size", "bedrooms", "age"] and instance["properties"]["bedrooms"]["type"] == "integer"
    )
    predict = spec["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(predict["responses"])
    assert predict["requestBody"]["content"]["application/json"]["examples"]["one"]["value"] == SEED_REQUESTS[0]
    assert "/train" not in spec["paths"]


def test_metrics_expose_requests_versions_and_log_health(client: TestClient) -> None:
    client.post("/predict", json=SEED_REQUESTS[0])
    text = client.get("/metrics").text
    assert 'modelship_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert "modelship_http_request_duration_seconds_bucket" in text
    assert 'modelship_predictions_total{model_version="house-price-' in text
    for name in ("queue_depth", "spool_bytes", "write_errors_total", "oldest_unflushed_seconds", "retries_total"):
        assert f"modelship_prediction_log_{name}" in text


def test_api_keys_with_scopes(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(
        "# id scopes secret\nfront predict s3cret-predict\nanalyst read,predict sha256:"
        "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n"
    )  # sha256("password")
    client = make_client(api_keys_file=keys)
    assert client.post("/predict", json=SEED_REQUESTS[0]).status_code == 401
    assert client.post("/predict", json=SEED_REQUESTS[0], headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/predict", json=SEED_REQUESTS[0], headers={"x-api-key": "s3cret-predict"}).status_code == 200
    assert client.get("/predictions", headers={"x-api-key": "s3cret-predict"}).status_code == 403
    assert client.get("/model", headers={"authorization": "Bearer password"}).status_code == 200
    for open_route in ("/health", "/ready", "/metrics"):
        assert client.get(open_route).status_code == 200


def test_fastapi_route_and_asgi_fast_path_answer_alike(pg_url: str, house_artifact: Path, tmp_path: Path) -> None:
    from service.app import create_app
    from service.settings import Settings

    answers = []
    for fast in (True, False):
        app = create_app(
            Settings(
                model_dir=house_artifact,
                database_url=pg_url,
                data_dir=tmp_path,
                spool_dir=tmp_path / f"spool-{fast}",
                access_log=False,
            ),
            fast_paths=fast,
        )
        with TestClient(app) as client:
            ok = client.post("/predict", json=SEED_REQUESTS[0], headers={"x-request-id": f"same-{fast}"}).json()
            bad = post(client, {"size": "x", "bedrooms": 3, "age": 10})
            wrong_type = client.post("/predict", content=b"{}", headers={"content-type": "text/plain"})
        ok.pop("request_id")
        answers.append((ok, bad.status_code, bad.json(), wrong_type.status_code, wrong_type.json()))
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"instances": [{"size": 1, "bedrooms": 2}, {"size": 1, "size": 2}]}', id="in-a-batch"),
        pytest.param(b'{"size": 1, "size": 2, "note": "\\u003a"}', id="an-escaped-colon-elsewhere"),
        pytest.param(b'{"size": 1, "\\u0073ize": 2}', id="spelt-with-an-escape"),
        pytest.param(b'{"size": 1, "size": 123456789012345678901234567890}', id="beside-a-128-bit-integer"),
        pytest.param(b'{"a": ' * 300 + b'{"size": 1, "size": 2}' + b"}" * 300, id="deeper-than-orjson-encodes"),
    ],
)
def test_every_repeated_key_is_found(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="appears more than once"):
        parse(body)


@pytest.mark.parametrize("body", [b'{"note": "a:b", "size": 1}', b'{"note": "\\u003a", "size": 1}', b"[1, 2]"])
def test_colons_inside_strings_are_not_repeated_keys(body: bytes) -> None:
    assert parse(body)


def test_a_wrong_method_names_the_allowed_one(client: TestClient) -> None:
    response = client.get("/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["message"] == "GET is not allowed on /predict; use POST"


def test_the_api_docs_load_their_files_from_this_server(client: TestClient) -> None:
    """/docs and /redoc work offline: every script and stylesheet they name is served here, none from a CDN."""
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
        assert assets and all(a.startswith("/docs/static/") for a in assets), (page, assets)
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
    assert client.get("/docs/static/nope.js").status_code == 404
