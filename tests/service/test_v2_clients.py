"""Open Inference Protocol v2 driven by clients nobody here wrote: tritonclient[http] and kserve's.

Each runs against a real uvicorn with a real Postgres; answers are compared with scikit-learn's own
predict / predict_proba on the same rows, and every acknowledged request is looked up in Postgres.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from model.artifact import load_model
from service.model_runner import PROBABILITY_DECIMALS, VALUE_DECIMALS
from tests.conftest import LiveService, start_service, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.v2]
KEYS = "client predict,read secret-client\nreader read secret-reader\n"
AUTH = {"Authorization": "Bearer secret-client"}


@dataclass
class Served:
    service: LiveService
    estimator: Any
    manifest: dict[str, Any]
    auth: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.auth)  # a copy: tritonclient adds its own headers to the dict it is given

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def client(self) -> triton.InferenceServerClient:
        return triton.InferenceServerClient(self.service.url.removeprefix("http://"))

    def rows(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` instances spread over the manifest's ranges; integer features get whole numbers."""
        rng = np.random.default_rng(seed)
        columns = []
        for f in self.manifest["features"]:
            column = rng.uniform(f["min"], f["max"], n)
            columns.append(np.round(column) if f["type"] == "integer" else column)
        return np.column_stack(columns)


@pytest.fixture(scope="module", params=["house-price", "iris"])
def served(
    request: pytest.FixtureRequest, pg_url: str, house_artifact: Path, iris_artifact: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:  # fmt: skip
    """house-price with API keys on, iris without: both auth paths meet the real clients."""
    workdir = tmp_path_factory.mktemp(f"v2-{request.param}")
    artifact = house_artifact if request.param == "house-price" else iris_artifact
    settings = {}
    if request.param == "house-price":
        (workdir / "keys").write_text(KEYS)
        settings["api_keys_file"] = str(workdir / "keys")
    service = start_service(artifact, pg_url, workdir, wait=False, **settings)
    wait_ready(service, timeout=120)  # importing scikit-learn alone takes 20 s on a busy 2-core machine
    estimator, manifest = load_model(artifact)
    yield Served(service, estimator, manifest.to_dict(), AUTH if settings else {})
    service.stop()


def expected(served: Served, x: np.ndarray) -> dict[str, np.ndarray]:
    if served.manifest["task"] != "classification":
        return {"prediction": np.round(served.estimator.predict(x), VALUE_DECIMALS)}
    # every protocol rounds by the same output rule (service.model_runner); the class is argmax before rounding
    return {"prediction": served.estimator.predict(x),
            "probabilities": np.round(served.estimator.predict_proba(x), PROBABILITY_DECIMALS)}  # fmt: skip


def assert_matches(served: Served, result: Any, x: np.ndarray) -> None:
    want = expected(served, x)
    if "probabilities" in want:
        np.testing.assert_array_equal(result.as_numpy("prediction"), want["prediction"])
        np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"], rtol=1e-9, atol=1e-12)
        labels = [served.manifest["classes"][int(i)] for i in want["prediction"]]
        assert [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")] == labels
    else:
        np.testing.assert_allclose(result.as_numpy("prediction"), want["prediction"], rtol=1e-9)


def logged(pg_url: str, request_id: str) -> dict[str, Any]:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT inputs, outputs FROM predictions WHERE request_id = %s", (request_id,)).fetchone()
    assert row is not None, f"no prediction-log row for {request_id}"
    return {"inputs": row[0], "outputs": row[1]}


def test_tritonclient_health_and_metadata(served: Served) -> None:
    client = served.client
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(served.name)
    assert client.is_model_ready(served.name, served.manifest["version"])
    assert not client.is_model_ready("no-such-model")
    meta = client.get_model_metadata(served.name, headers=served.headers)
    assert [i["name"] for i in meta["inputs"]] == [f["name"] for f in served.manifest["features"]]
    assert meta["versions"] == [served.manifest["version"]]
    outputs = {o["name"] for o in meta["outputs"]}
    assert outputs == ({"prediction", "label", "probabilities"} if served.manifest["classes"] else {"prediction"})


@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_one_matrix_equals_sklearn(served: Served, pg_url: str, n: int, binary: bool) -> None:
    x = served.rows(n, seed=n)
    tensor = triton.InferInput("input", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x, binary_data=binary)
    result = served.client.infer(served.name, [tensor], request_id=f"m-{n}-{binary}", headers=served.headers)
    assert_matches(served, result, x)
    response = result.get_response()
    assert response["id"] == f"m-{n}-{binary}" and response["model_version"] == served.manifest["version"]
    record = logged(pg_url, response["parameters"]["request_id"])
    assert len(record["inputs"]["instances"]) == n and record["inputs"]["id"] == f"m-{n}-{binary}"
    assert len(record["outputs"]["columns"]["prediction"]) == n


@pytest.mark.parametrize("n", [1, 1000])
def test_tritonclient_infer_one_tensor_per_feature_equals_sklearn(served: Served, n: int) -> None:
    x = served.rows(n, seed=n + 7)
    inputs = []
    for j, f in enumerate(served.manifest["features"]):
        # Integer features as INT64, numbers as FP32: the model then sees the float32 values sent.
        datatype, dtype = ("INT64", np.int64) if f["type"] == "integer" else ("FP32", np.float32)
        tensor = triton.InferInput(f["name"], [n], datatype)
        tensor.set_data_from_numpy(x[:, j].astype(dtype), binary_data=j % 2 == 0)
        inputs.append(tensor)
        x[:, j] = x[:, j].astype(dtype)
    outputs = [triton.InferRequestedOutput("prediction")]
    result = served.client.infer(served.name, inputs, outputs=outputs, headers=served.headers)
    np.testing.assert_allclose(result.as_numpy("prediction"), np.round(served.estimator.predict(x), VALUE_DECIMALS),
                               rtol=1e-9)  # fmt: skip
    assert [o["name"] for o in result.get_response()["outputs"]] == ["prediction"]


def _infer(served: Served, body: Any, headers: dict[str, str] | None = None, path: str = "") -> httpx.Response:
    url = f"{served.service.url}/v2/models/{path or served.name}/infer"
    return httpx.post(url, json=body, headers=served.headers if headers is None else headers, timeout=10)


def _tensor(served: Served, data: Any, datatype: str = "FP64", shape: list[int] | None = None) -> dict[str, Any]:
    width = len(served.manifest["features"])
    return {"inputs": [{"name": "input", "datatype": datatype, "shape": shape or [1, width], "data": data}]}


def test_bad_input_gets_a_4xx_error_naming_the_problem(served: Served, pg_url: str) -> None:
    row = served.rows(1)[0].tolist()
    width = len(row)
    cases = {
        "wrong datatype": (_tensor(served, [row], "BOOL"), 400, "datatype must be one of"),
        "strings as data": (_tensor(served, [[str(v) for v in row]]), 400, "got strings"),
        "wrong shape": (_tensor(served, row, shape=[1, width + 1]), 400, f"shape [1, {width + 1}] holds"),
        "wrong width": (_tensor(served, row * 2, shape=[1, 2 * width]), 400, f"expected shape [N, {width}]"),
        "wrong names": (
            {
                "inputs": [
                    {"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]},
                    {"name": "y", "datatype": "FP64", "shape": [1], "data": [1.0]},
                ]
            },
            400,
            "one [N] tensor per feature",
        ),
        "out of range": (_tensor(served, [[1e9] * width]), 400, "outside the range seen in training"),
        "unknown output": ({**_tensor(served, [row]), "outputs": [{"name": "nope"}]}, 400, "unknown outputs"),
        "not an object": ([1, 2], 400, "inference request object"),
    }
    for case, (body, status, text) in cases.items():
        response = _infer(served, body)
        assert response.status_code == status, (case, response.text)
        assert text in response.json()["error"], (case, response.json())
    first = served.manifest["features"][0]["name"]
    response = _infer(served, _tensor(served, [row, [1e9] * width], shape=[2, width]))
    assert response.json()["details"][0]["field"] == f"instances.1.{first}"


def test_wrong_model_or_version_is_a_404_naming_what_is_loaded(served: Served) -> None:
    for path in ("other", f"{served.name}/versions/v0"):
        response = _infer(served, _tensor(served, [served.rows(1)[0].tolist()]), path=path)
        assert response.status_code == 404
        assert served.manifest["version"] in response.json()["error"]
    with pytest.raises(InferenceServerException) as caught:
        served.client.get_model_metadata("other", headers=served.headers)
    assert caught.value.status() == "404" and served.name in caught.value.message()


def test_api_key_scopes_apply_to_v2(served: Served) -> None:
    body = _tensor(served, [served.rows(1)[0].tolist()])
    if not served.auth:  # keys off: no key needed, as for /predict
        assert _infer(served, body, headers={}).status_code == 200
        return
    assert _infer(served, body, headers={}).status_code == 401
    assert _infer(served, body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    reader = _infer(served, body, headers={"Authorization": "Bearer secret-reader"})
    assert reader.status_code == 403 and "'predict' scope" in reader.json()["error"]
    assert httpx.get(f"{served.service.url}/v2/models/{served.name}").status_code == 401
    assert httpx.get(f"{served.service.url}/v2/health/ready").status_code == 200


def test_kserve_client_equals_sklearn(served: Served) -> None:
    """kserve.InferenceRESTClient (v2), run from KServe's own venv: its pins conflict with ours."""
    from loadtest.bench.peers import ensure_venv

    x = served.rows(100, seed=3)
    script = Path(__file__).with_name("kserve_client.py")
    request = {"url": served.service.url, "model": served.name, "rows": x.tolist(), "headers": served.headers}
    run = subprocess.run([str(ensure_venv("kserve")), str(script)], input=json.dumps(request), capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout)
    assert answer["live"] and answer["ready"] and answer["model_ready"]
    want = expected(served, x)
    if "probabilities" in want:
        assert answer["outputs"]["prediction"] == want["prediction"].tolist()
        np.testing.assert_allclose(answer["outputs"]["probabilities"], want["probabilities"], rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_allclose(answer["outputs"]["prediction"], want["prediction"], rtol=1e-9)
    assert answer["id"] == "kserve-client"
