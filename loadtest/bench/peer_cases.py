"""`make bench PEERS=kserve,mlserver`: KServe and MLServer serving the same model.joblib, over v2, beside modelship.

Every server here gets the same Open Inference Protocol v2 bodies (one `[N, n_features]` FP64 tensor,
the same rows as the /predict workloads), and its answers are checked against scikit-learn on those
rows before any timing (`check_answers`). Each peer runs from its own venv (loadtest/bench/peers.py).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loadtest.bench.cases import BATCH_SIZE, VARIANTS, Case, Workload, _instances, service_spec
from loadtest.bench.peers import ensure_venv
from loadtest.bench.servers import ServerSpec
from model.artifact import load_model
from model.manifest import Manifest

PEERS = ("kserve", "mlserver")
KSERVE_PEER = Path(__file__).with_name("kserve_peer.py")


def _v2_body(rows: list[dict[str, Any]], names: list[str]) -> bytes:
    data = [[row[n] for n in names] for row in rows]
    return orjson.dumps({"inputs": [{"name": "input", "shape": [len(data), len(names)], "datatype": "FP64",
                                     "data": data}]})  # fmt: skip


def v2_workloads(house: Manifest, iris: Manifest) -> dict[str, tuple[str, Workload]]:
    """model name -> workload, for each v2 workload: the rows of the /predict workloads, v2-shaped."""
    house_names, iris_names = house.feature_names, iris.feature_names
    house_rows, iris_rows = _instances(house, 1, VARIANTS), _instances(iris, 2, VARIANTS)
    batches = [_instances(house, 100 + i, BATCH_SIZE) for i in range(16)]

    def load(label: str, model: str, bodies: list[bytes], instances: int = 1) -> tuple[str, Workload]:
        path = f"/v2/models/{model}/infer"
        return model, Workload(label, tuple(bodies), instances=instances, path=path, expect=b'"outputs"')

    return {
        "house-1-v2": load("house-price, 1 instance, v2", house.name,
                           [_v2_body([r], house_names) for r in house_rows]),
        "iris-1-v2": load("iris, 1 instance, v2", iris.name, [_v2_body([r], iris_names) for r in iris_rows]),
        "house-100-v2": load(f"house-price, batch of {BATCH_SIZE}, v2", house.name,
                             [_v2_body(b, house_names) for b in batches], BATCH_SIZE),
    }  # fmt: skip


def _kserve(key: str, model_dir: Path, name: str, workers: int) -> ServerSpec:
    argv = (str(ensure_venv("kserve")), str(KSERVE_PEER), "--model_dir", str(model_dir), "--model_name", name,
            "--http_port", "{port}", "--workers", str(workers))  # fmt: skip
    return ServerSpec(key, "KServe 0.21", argv, {}, ready_path=f"/v2/models/{name}/ready")


def _mlserver(key: str, model_dir: Path, name: str, workers: int, scratch: Path, batch: bool) -> ServerSpec:
    """mlserver-sklearn on model.joblib, `parallel_workers` = cores; iris optionally with adaptive batching.

    The uri is absolute: MLServer resolves a relative one against the model-settings folder, not the cwd.
    """
    folder = scratch / f"mlserver-{key}"
    (folder / "metrics").mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {"name": name, "implementation": "mlserver_sklearn.SKLearnModel",
                                "parameters": {"uri": str((model_dir / "model.joblib").absolute())}}  # fmt: skip
    if batch:
        settings |= {"max_batch_size": 32, "max_batch_time": 0.002}
    (folder / "model-settings.json").write_text(json.dumps(settings))
    mlserver = ensure_venv("mlserver").with_name("mlserver")
    # MLServer reads its settings from MLSERVER_* variables. Its metrics server is off: with parallel
    # workers here it tried to bind its port twice and the server exited (mlserver/server.py starts it
    # only when `metrics_endpoint` is set). gRPC gets the next port.
    variables = (f"MLSERVER_HTTP_PORT={{port}} MLSERVER_GRPC_PORT=$(({{port}}+1)) MLSERVER_METRICS_ENDPOINT= "
                 f"MLSERVER_METRICS_DIR={folder}/metrics MLSERVER_PARALLEL_WORKERS={workers}")  # fmt: skip
    script = f"{variables} exec {mlserver} start {folder}"
    return ServerSpec(key, "MLServer 1.7.1", ("sh", "-c", script), {}, ready_path=f"/v2/models/{name}/ready")


def peer_cases(
    peers: tuple[str, ...], house_dir: Path, iris_dir: Path, house: Manifest, iris: Manifest,
    db_url: str, scratch: Path, workers: int, service_env: Mapping[str, str],
) -> list[Case]:  # fmt: skip
    load = v2_workloads(house, iris)
    dirs = {house.name: house_dir, iris.name: iris_dir}
    cases = [Case("modelship-v2-batch", "modelship v2, batch of 100",
                  service_spec("v2-batch", house_dir, db_url, scratch, workers, service_env),
                  load["house-100-v2"][1], "modelship")]  # fmt: skip
    for peer in peers:
        for workload_key in ("house-1-v2", "iris-1-v2", "house-100-v2"):
            model, workload = load[workload_key]
            key = f"{peer}-{workload_key}"
            spec = _kserve(key, dirs[model], model, workers) if peer == "kserve" else \
                _mlserver(key, dirs[model], model, workers, scratch, batch=False)  # fmt: skip
            cases.append(Case(key, f"{peer}, {workload.key}", spec, workload, "peer"))
        if peer == "mlserver":
            model, workload = load["iris-1-v2"]
            spec = _mlserver("mlserver-iris-batching", dirs[model], model, workers, scratch, batch=True)
            cases.append(Case(spec.key, "mlserver, iris, max_batch_size 32 / 2 ms", spec, workload, "peer"))
    return cases


def check_answers(port: int, workload: Workload, model_dir: Path) -> None:
    """Post the first body; its first output must equal scikit-learn's predict on the same rows."""
    estimator, _ = load_model(model_dir)
    body = workload.bodies[0]
    tensor = orjson.loads(body)["inputs"][0]
    rows = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", workload.path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = orjson.loads(response.read())
    finally:
        connection.close()
    if response.status != 200:
        raise AssertionError(f"{workload.path} answered {response.status}: {answer}")
    got = np.asarray(answer["outputs"][0]["data"], dtype=np.float64)
    want = np.asarray(estimator.predict(rows), dtype=np.float64)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6):
        raise AssertionError(f"{workload.path} disagrees with scikit-learn: {got[:5]} != {want[:5]}")


def model_dir_of(case: Case) -> Path | None:
    """The model folder a peer case serves, read back from its argv or settings (for check_answers)."""
    argv = case.server.argv
    if "--model_dir" in argv:
        return Path(argv[argv.index("--model_dir") + 1])
    env_dir = case.server.env.get("MODELSHIP_MODEL_DIR")
    if env_dir:
        return Path(env_dir)
    for arg in argv:
        if " start " in arg:
            settings = json.loads((Path(arg.rsplit(" ", 1)[1]) / "model-settings.json").read_text())
            return Path(settings["parameters"]["uri"]).parent
    return None
