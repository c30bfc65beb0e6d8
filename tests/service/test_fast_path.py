"""The pure-ASGI fast path answers /predict, KServe v1 and v2 infer byte for byte as the FastAPI routes do.

Two apps on the same settings and the same Postgres: one as built (`ServingApp.fast_paths` answers),
one without the fast paths (`create_app(fast_paths=False)`: the FastAPI routes answer, through the same core).
Each case goes to both; status, body,
headers, the prediction-log row, the metrics and the access-log lines must agree. The request id
differs (the log keeps one row per id), so it is the one thing replaced before comparing.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.routing import compile_path

from model.artifact import load_model
from service.app import create_app
from service.auth import declared_route
from service.protocols import V1_PREDICT, kserve_v1
from service.protocols import V2_INFER as INFER
from service.protocols import V2_INFER_VERSION as INFER_VERSION
from service.protocols.v2 import match
from service.settings import Settings
from service.state import AppState

KEYS = "writer predict s3cret-predict\nreader read s3cret-read\n"
PREDICT_KEY = {"x-api-key": "s3cret-predict"}
MAX_BODY = 64 * 1024
COMPARED_HEADERS = ("content-type", "content-length", "www-authenticate", "retry-after", "allow", "location")


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/m/infer",
        "/v2/models/m/versions/1/infer",
        "/v2/models/versions/versions/x/infer",
        "/v2/models/m%2Fx/infer",
        "/v2/models/a.b-c_d/versions/v:1/infer",
        "/v2/models/infer",
        "/v2/models//infer",
        "/v2/models/m/infer/",
        "/v2/models/m/x/infer",
        "/v2/models/m/versions//infer",
        "/v2/models//versions/1/infer",
        "/v2/models/m/versions/1/2/infer",
        "/v2/models/m/versions/infer",
        "/v2/models/m/version/1/infer",
        "/v2/models/m/ready",
        "/v2/models/m",
        "/predict",
        "/v2/models/m/inferx",
        "/v2/models/m/versions/1/x/infer",
    ],
)
def test_match_takes_exactly_the_paths_the_route_templates_take(path: str) -> None:
    plain, versioned = compile_path(INFER)[0], compile_path(INFER_VERSION)[0]
    if found := plain.match(path):
        expected: dict[str, str] | None = {"name": found["name"]}
    elif found := versioned.match(path):
        expected = {"name": found["name"], "version": found["version"]}
    else:
        expected = None
    assert match(path) == expected


@pytest.mark.parametrize(
    "path",
    ["/v1/models/m:predict", "/v1/models/a.b-c_d:predict", "/v1/models/:predict", "/v1/models/m/x:predict",
     "/v1/models/m:predictx", "/v1/models/m:explain", "/v1/models/m:predict/", "/v1/models/m", "/v2/models/m/infer"],
)  # fmt: skip
def test_the_v1_match_takes_exactly_the_paths_its_route_template_takes(path: str) -> None:
    found = compile_path(V1_PREDICT)[0].match(path)
    assert kserve_v1.match(path) == ({"name": found["name"]} if found else None)


@dataclass
class Side:
    """One app, and what it wrote where the comparison reads it."""

    client: TestClient
    state: AppState
    access_log: io.StringIO


@dataclass
class Pair:
    fast: Side
    route: Side
    name: str
    version: str
    pg_url: str


def _side(stack: ExitStack, settings: Settings, fast: bool) -> Side:
    app = create_app(settings, fast_paths=fast)
    client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
    state: AppState = app.state.modelship
    assert state.access_log is not None
    stream = io.StringIO()
    state.access_log.stream = stream  # RequestContext writes through this very object
    return Side(client, state, stream)


@pytest.fixture(scope="module", params=["reject", "flag"])
def pair(
    request: pytest.FixtureRequest, pg_url: str, house_artifact: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp(f"v2fast-{request.param}")
    (folder / "keys").write_text(KEYS)
    _, manifest = load_model(house_artifact)
    with ExitStack() as stack:
        sides = [
            _side(
                stack,
                Settings(
                    model_dir=house_artifact,
                    database_url=pg_url,
                    data_dir=folder,
                    spool_dir=folder / f"spool-{fast}",
                    access_log=True,
                    api_keys_file=folder / "keys",
                    range_policy=request.param,
                    max_body_bytes=MAX_BODY,
                ),
                fast,
            )
            for fast in (True, False)
        ]
        yield Pair(sides[0], sides[1], manifest.name, manifest.version, pg_url)


def matrix_body(rows: np.ndarray, **extra: Any) -> bytes:
    tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP64", "data": rows.reshape(-1).tolist()}
    return orjson.dumps({"inputs": [tensor], **extra})


def per_feature_body(rows: np.ndarray) -> bytes:
    columns = [
        ("size", "FP32", rows[:, 0].tolist()),
        ("bedrooms", "INT64", rows[:, 1].astype(int).tolist()),
        ("age", "INT32", [[int(v)] for v in rows[:, 2]]),
    ]
    inputs = [
        {"name": n, "datatype": t, "shape": [len(rows)] if n != "age" else [len(rows), 1], "data": d}
        for n, t, d in columns
    ]
    return orjson.dumps({"id": "per-feature", "inputs": inputs, "outputs": [{"name": "prediction"}]})


def binary_body(rows: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """Triton's binary tensor data extension, as tritonclient sends it: no Content-Type at all."""
    raw = rows.astype("<f8").tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    return header + raw, {"inference-header-content-length": str(len(header))}


def rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(500, 3500, n), rng.integers(1, 6, n), rng.integers(0, 50, n)]).astype(float)


Body = bytes | list[bytes]  # a list goes as Transfer-Encoding: chunked, with no Content-Length to check first


def cases(pair: Pair) -> dict[str, tuple[str, str, Body, dict[str, str]]]:
    """name -> (method, path, body, headers)."""
    plain = f"/v2/models/{pair.name}/infer"
    versioned = f"/v2/models/{pair.name}/versions/{pair.version}/infer"
    json_key = {"content-type": "application/json", **PREDICT_KEY}
    out_of_range = rows(3, 9)
    out_of_range[1, 0] = 1e9
    binary, binary_headers = binary_body(rows(5, 4))
    return {
        "one row": ("POST", plain, matrix_body(rows(1, 1)), json_key),
        "100 rows": ("POST", plain, matrix_body(rows(100, 2), id="batch"), json_key),
        "100 rows, one tensor per feature": ("POST", plain, per_feature_body(rows(100, 3)), json_key),
        "100 rows, named version": ("POST", versioned, matrix_body(rows(100, 5)), json_key),
        "binary tensors, no content type": ("POST", plain, binary, {**binary_headers, **PREDICT_KEY}),
        "wrong model name": ("POST", "/v2/models/other/infer", matrix_body(rows(1, 1)), json_key),
        "wrong version": ("POST", f"/v2/models/{pair.name}/versions/v0/infer", matrix_body(rows(1, 1)), json_key),
        "bad json": ("POST", plain, b'{"inputs": [', json_key),
        "empty body": ("POST", plain, b"", json_key),
        "not an inference request": ("POST", plain, b"[1, 2]", json_key),
        "wrong content type": ("POST", plain, matrix_body(rows(1, 1)), {"content-type": "text/plain", **PREDICT_KEY}),
        "body too large": ("POST", plain, b'{"inputs": [' + b" " * MAX_BODY + b"]}", json_key),
        "body too large, chunked": ("POST", plain, [b'{"inputs": ['] + [b" " * 4096] * 20 + [b"]}"], json_key),
        "100 rows, chunked": ("POST", plain, [matrix_body(rows(100, 6))], json_key),
        "out of range": ("POST", plain, matrix_body(out_of_range), json_key),
        "no key": ("POST", plain, matrix_body(rows(1, 1)), {"content-type": "application/json"}),
        "wrong key": (
            "POST",
            plain,
            matrix_body(rows(1, 1)),
            {"content-type": "application/json", "x-api-key": "nope"},
        ),
        "key without the predict scope": (
            "POST",
            versioned,
            matrix_body(rows(1, 1)),
            {"content-type": "application/json", "authorization": "Bearer s3cret-read"},
        ),
        "no key, wrong model": ("POST", "/v2/models/other/infer", b"{}", {"content-type": "application/json"}),
        "GET on infer": ("GET", plain, b"", PREDICT_KEY),
        "predict, one": ("POST", "/predict", b'{"size": 2500, "bedrooms": 3, "age": 10}', json_key),
        "predict, positional": ("POST", "/predict", b'{"input": [2500, 3, 10]}', json_key),
        "predict, batch": ("POST", "/predict", orjson.dumps({"instances": [dict(zip(("size", "bedrooms", "age"),
                                                            r, strict=True)) for r in rows(50, 7).tolist()]}),
                           json_key),
        "predict, bad batch": ("POST", "/predict", b'{"instances": [{"size": "x", "bedrooms": 3}, 4]}', json_key),
        "predict, out of range": ("POST", "/predict", b'{"size": 99999, "bedrooms": 3, "age": 10}', json_key),
        "predict, no key": ("POST", "/predict", b'{"size": 2500, "bedrooms": 3, "age": 10}',
                            {"content-type": "application/json"}),
        "v1, batch": ("POST", f"/v1/models/{pair.name}:predict", orjson.dumps({"instances": rows(40, 8).tolist()}),
                      json_key),
        "v1, out of range": ("POST", f"/v1/models/{pair.name}:predict",
                             orjson.dumps({"instances": out_of_range.tolist()}), json_key),
        "v1, a string and a short row": ("POST", f"/v1/models/{pair.name}:predict",
                                         b'{"instances": [[2500, "x", 10], [1, 2]]}', json_key),
        "v1, a string": ("POST", f"/v1/models/{pair.name}:predict", b'{"instances": [[2500, "x", 10]]}', json_key),
        "v1, wrong model": ("POST", "/v1/models/other:predict", b'{"instances": [[2500, 3, 10]]}', json_key),
        "v1, not instances": ("POST", f"/v1/models/{pair.name}:predict", b'{"inputs": [[2500, 3, 10]]}', json_key),
        "v1, no key": ("POST", f"/v1/models/{pair.name}:predict", b'{"instances": [[2500, 3, 10]]}',
                       {"content-type": "application/json"}),
        "empty name": ("POST", "/v2/models//infer", b"{}", json_key),
        "trailing slash": ("POST", plain + "/", b"{}", json_key),
    }


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    request_id: str


def ask(side: Side, method: str, path: str, body: Body, headers: dict[str, str], request_id: str) -> Answer:
    response = side.client.request(
        method,
        path,
        content=iter(body) if isinstance(body, list) else body or None,
        headers={**headers, "x-request-id": request_id},
        follow_redirects=False,
    )
    assert response.headers["x-request-id"] == request_id
    compared = {k: response.headers[k] for k in COMPARED_HEADERS if k in response.headers}
    return Answer(response.status_code, response.content.replace(request_id.encode(), b"<id>"), compared, request_id)


def log_rows(pg_url: str, request_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(pg_url) as conn:
        found = conn.execute(
            "SELECT request_id, model_version, inputs, outputs FROM predictions WHERE request_id = ANY(%s)",
            (request_ids,),
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in found}


def test_fast_path_and_fastapi_route_answer_byte_for_byte(pair: Pair) -> None:
    assert pair.fast.client.app.fast_paths is not None and pair.route.client.app.fast_paths is None
    token = uuid.uuid4().hex[:12]
    answers: dict[str, tuple[Answer, Answer]] = {}
    for case, (method, path, body, headers) in cases(pair).items():
        fast, route = (
            ask(side, method, path, body, headers, f"{_slug(case)}-{tag}-{token}")
            for side, tag in ((pair.fast, "fast"), (pair.route, "slow"))  # one length: Content-Length compares
        )
        assert (fast.status, fast.body, fast.headers) == (route.status, route.body, route.headers), case
        answers[case] = (fast, route)
    expected = {
        "one row": 200,
        "100 rows": 200,
        "100 rows, one tensor per feature": 200,
        "100 rows, named version": 200,
        "binary tensors, no content type": 200,
        "wrong model name": 404,
        "wrong version": 404,
        "bad json": 400,
        "empty body": 400,
        "not an inference request": 400,
        "wrong content type": 415,
        "body too large": 413,
        "body too large, chunked": 413,
        "100 rows, chunked": 200,
        "no key": 401,
        "wrong key": 401,
        "key without the predict scope": 403,
        "no key, wrong model": 401,
        "GET on infer": 405,
        "empty name": 404,
        "trailing slash": 307,
        "out of range": 400 if pair.fast.state.settings.range_policy == "reject" else 200,
        "predict, one": 200,
        "predict, positional": 200,
        "predict, batch": 200,
        "predict, bad batch": 422,
        "predict, out of range": 422 if pair.fast.state.settings.range_policy == "reject" else 200,
        "predict, no key": 401,
        "v1, batch": 200,
        "v1, out of range": 400 if pair.fast.state.settings.range_policy == "reject" else 200,
        "v1, a string and a short row": 400,
        "v1, a string": 400,
        "v1, wrong model": 404,
        "v1, not instances": 400,
        "v1, no key": 401,
    }
    assert {case: fast.status for case, (fast, _) in answers.items()} == expected
    assert orjson.loads(answers["wrong version"][0].body)["error"].endswith(f"version {pair.version!r}")
    assert answers["no key"][0].headers["www-authenticate"] == 'Bearer realm="modelship"'
    if answers["out of range"][0].status == 200:
        assert "outside the range" in orjson.loads(answers["out of range"][0].body)["parameters"]["warnings"]
    v1 = orjson.loads(answers["v1, batch"][0].body)
    v2 = orjson.loads(answers["100 rows"][0].body)
    assert len(v1["predictions"]) == 40 and len(v2["outputs"][0]["data"]) == 100
    assert orjson.loads(answers["v1, a string"][0].body)["details"][0]["field"] == "instances.0.bedrooms"
    short_row = orjson.loads(answers["v1, a string and a short row"][0].body)["error"]
    assert "instances.1: must be an array of 3 values" in short_row
    bad_batch = orjson.loads(answers["predict, bad batch"][0].body)
    assert bad_batch["message"].startswith("3 problems in the request body: instances.0.size: must be a JSON")
    _assert_same_log_rows(pair, list(answers.values()))


def _slug(case: str) -> str:
    """A case name as a request id may spell it (RequestContext's [A-Za-z0-9._:-])."""
    return "".join(c if c.isalnum() else "_" for c in case)[:60]


def _assert_same_log_rows(pair: Pair, answers: list[tuple[Answer, Answer]]) -> None:
    logged = log_rows(pair.pg_url, [a.request_id for both in answers for a in both])
    for fast, route in answers:
        assert (fast.request_id in logged) == (route.request_id in logged) == (fast.status == 200), fast.request_id
        assert logged.get(fast.request_id) == logged.get(route.request_id), fast.request_id


def test_metrics_and_access_log_label_infer_by_its_route_template(pair: Pair) -> None:
    body = matrix_body(rows(2, 7))
    headers = {"content-type": "application/json", **PREDICT_KEY}
    for side in (pair.fast, pair.route):
        for path in (
            f"/v2/models/{pair.name}/infer",
            f"/v2/models/{pair.name}/versions/{pair.version}/infer",
            "/v2/models/other/infer",
        ):
            assert side.client.post(path, content=body, headers=headers).status_code in (200, 404)
    metrics = [_v2_request_counts(side.client.get("/metrics").text) for side in (pair.fast, pair.route)]
    assert metrics[0] == metrics[1]
    assert {route for route, _ in metrics[0]} == {INFER, INFER_VERSION}
    logs = [_access_lines(side) for side in (pair.fast, pair.route)]
    assert logs[0] == logs[1] and logs[0][-3:] == [(INFER, 200), (INFER_VERSION, 200), (INFER, 404)]


def _v2_request_counts(text: str) -> dict[tuple[str, str], float]:
    """(route label, status) -> count of the POST v2 request counters in a Prometheus scrape."""
    counts = {}
    for line in text.splitlines():
        if line.startswith("modelship_http_requests_total{") and 'method="POST"' in line and "/v2/" in line:
            labels, value = line.rsplit(" ", 1)
            parsed = dict(part.split("=", 1) for part in labels[labels.index("{") + 1 : -1].split(","))
            counts[(parsed["route"].strip('"'), parsed["status"].strip('"'))] = float(value)
    return counts


def _access_lines(side: Side) -> list[tuple[str, int]]:
    assert side.state.access_log is not None
    side.state.access_log.flush()
    entries = [orjson.loads(line) for line in side.access_log.getvalue().splitlines()]
    return [(e["route"], e["status"]) for e in entries if e["method"] == "POST" and e["route"].startswith("/v2/")]


def test_the_fast_path_takes_its_routes_and_scopes_from_the_fastapi_routes() -> None:
    """Start-up fails, instead of serving unchecked, if the routes it stands in for are renamed or gone."""
    from fastapi import FastAPI

    from service.v2 import router

    app = FastAPI()
    app.include_router(router)
    assert (
        declared_route(app.routes, "POST", INFER).scopes
        == declared_route(app.routes, "POST", INFER_VERSION).scopes
        == ("predict",)
    )
    assert declared_route(app.routes, "POST", INFER).route.path == INFER
    with pytest.raises(LookupError, match=re.escape(f"no route POST {INFER}")):
        declared_route(FastAPI().routes, "POST", INFER)
