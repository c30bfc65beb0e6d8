"""`make bench PEERS=kserve,mlserver`: KServe and MLServer on our model.joblib beside modelship, on every path each has.

Every system gets the same rows as the /predict workloads, over each protocol it speaks: KServe v1
(`{"instances": [[...]]}` to `/v1/models/{name}:predict`, its sklearnserver's default and its fastest) and
Open Inference Protocol v2 (one `[N, n_features]` FP64 tensor), MLServer v2 (with and without adaptive
batching), and modelship `/predict`, v1 and v2. So v1 meets v1 and v2 meets v2 in the table, and the report
compares each system on its fastest path (report.py). Every answer is checked against scikit-learn on the
same rows before any timing (`check_answers`). Each peer runs from its own venv (loadtest/bench/peers.py).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping, Sequence
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
FAMILIES = ("house-1", "iris-1", "house-100")
PEER_PROTOCOLS = {"kserve": ("v1", "v2"), "mlserver": ("v2",)}  # MLServer speaks v2 only


def case_keys(peers: tuple[str, ...] = PEERS) -> tuple[str, ...]:
    """The keys of `peer_cases(peers, ...)`, in its order, for `--only`."""
    short = {"house-1": "house", "iris-1": "iris", "house-100": "batch"}
    keys = [f"modelship-{protocol}-{short[family]}" for protocol in ("v1", "v2") for family in FAMILIES]
    for peer in peers:
        keys += [f"{peer}-{family}-{protocol}" for protocol in PEER_PROTOCOLS[peer] for family in FAMILIES]
        keys += ["mlserver-iris-batching"] if peer == "mlserver" else []
    return tuple(keys)


def _matrix(rows: list[dict[str, Any]], names: list[str]) -> list[list[Any]]:
    return [[row[n] for n in names] for row in rows]


def v1_body(rows: list[dict[str, Any]], names: list[str]) -> bytes:
    """KServe's v1 request: `{"instances": [[...], ...]}`, one list per row in the manifest's feature order."""
    return orjson.dumps({"instances": _matrix(rows, names)})


def v2_body(rows: list[dict[str, Any]], names: list[str]) -> bytes:
    """An Open Inference Protocol v2 request: one `[N, n_features]` FP64 tensor."""
    data = _matrix(rows, names)
    return orjson.dumps({"inputs": [{"name": "input", "shape": [len(data), len(names)], "datatype": "FP64",
                                     "data": data}]})  # fmt: skip


def v1_path(model: str) -> str:
    return f"/v1/models/{model}:predict"


def protocol_workloads(house: Manifest, iris: Manifest) -> dict[str, tuple[str, Workload]]:
    """ "{family}-{v1|v2}" -> (model name, workload): the rows of the /predict workloads, in each protocol's body."""
    house_rows, iris_rows = _instances(house, 1, VARIANTS), _instances(iris, 2, VARIANTS)
    batches = [_instances(house, 100 + i, BATCH_SIZE) for i in range(16)]
    rows = {"house-1": (house, [[r] for r in house_rows], "house-price, 1 instance"),
            "iris-1": (iris, [[r] for r in iris_rows], "iris, 1 instance"),
            "house-100": (house, batches, f"house-price, batch of {BATCH_SIZE}")}  # fmt: skip
    loads = {}
    for family, (manifest, bodies, label) in rows.items():
        names, size = manifest.feature_names, len(bodies[0])
        loads[f"{family}-v1"] = manifest.name, Workload(
            f"{label}, v1", tuple(v1_body(b, names) for b in bodies), size, v1_path(manifest.name),
            b'"predictions"', family,
        )  # fmt: skip
        loads[f"{family}-v2"] = manifest.name, Workload(
            f"{label}, v2", tuple(v2_body(b, names) for b in bodies), size, f"/v2/models/{manifest.name}/infer",
            b'"outputs"', family,
        )  # fmt: skip
    return loads


def _kserve(key: str, model_dir: Path, name: str, workers: int) -> ServerSpec:
    """One KServe ModelServer; it answers v1 and v2 alike, so the same spec serves both protocols' cases."""
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
    """modelship over v1 and v2 for each workload, then each peer over every protocol it speaks."""
    load = protocol_workloads(house, iris)
    dirs = {house.name: house_dir, iris.name: iris_dir}
    short = {"house-1": "house", "iris-1": "iris", "house-100": "batch"}
    cases = []
    for protocol in ("v1", "v2"):
        for family in FAMILIES:
            model, workload = load[f"{family}-{protocol}"]
            key = f"{protocol}-{short[family]}"
            spec = service_spec(key, dirs[model], db_url, scratch, workers, service_env)
            cases.append(Case(f"modelship-{key}", f"modelship {protocol}, {workload.key.rsplit(',', 1)[0]}", spec,
                              workload, "modelship", "modelship", protocol))  # fmt: skip
    for peer in peers:
        for protocol in PEER_PROTOCOLS[peer]:
            for family in FAMILIES:
                model, workload = load[f"{family}-{protocol}"]
                key = f"{peer}-{family}-{protocol}"
                spec = _kserve(key, dirs[model], model, workers) if peer == "kserve" else \
                    _mlserver(key, dirs[model], model, workers, scratch, batch=False)  # fmt: skip
                cases.append(Case(key, f"{peer}, {workload.key}", spec, workload, "peer", peer, protocol))
        if peer == "mlserver":
            model, workload = load["iris-1-v2"]
            spec = _mlserver("mlserver-iris-batching", dirs[model], model, workers, scratch, batch=True)
            cases.append(Case(spec.key, "mlserver, iris, max_batch_size 32 / 2 ms", spec, workload, "peer",
                              "mlserver", "v2, batching"))  # fmt: skip
    return cases


def _sent_rows(workload: Workload, body: bytes) -> np.ndarray:
    request = orjson.loads(body)
    if "instances" in request:
        return np.asarray(request["instances"], dtype=np.float64)
    tensor = request["inputs"][0]
    return np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])


def _answered_values(answer: Any) -> Sequence[Any]:
    """v1: `predictions`, one plain value per row (KServe's shape); v2: the first output's data."""
    if "predictions" in answer:
        return list(answer["predictions"])
    return list(answer["outputs"][0]["data"])


def answer_problem(
    workload: Workload, body: bytes, status: int, answer: Any, estimator: Any, version: str | None = None
) -> str | None:
    """Why an answer to `body` is wrong, or None: its values must equal scikit-learn's predict on the same rows.

    `version`, when given (modelship's cases), must be the answer's `model_version` as well.
    """
    if status != 200:
        return f"{workload.path} answered {status}: {answer}"
    if not isinstance(answer, dict) or not ("predictions" in answer or "outputs" in answer):
        return f"{workload.path} answered neither predictions nor outputs: {str(answer)[:200]}"
    if version is not None and answer.get("model_version") != version:
        return f"{workload.path} answered model_version {answer.get('model_version')!r}, not {version!r}"
    try:
        got = np.asarray(_answered_values(answer), dtype=np.float64)
    except (TypeError, ValueError):
        return f"{workload.path} answered values that are not plain numbers: {str(answer)[:200]}"
    want = np.asarray(estimator.predict(_sent_rows(workload, body)), dtype=np.float64)
    # atol: modelship rounds a value to cents by the output rule (service.model_runner), the peers do not.
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=0.005):
        return f"{workload.path} disagrees with scikit-learn: {got[:5]} != {want[:5]}"
    return None


def check_answers(port: int, workload: Workload, model_dir: Path, *, check_version: bool = False) -> None:
    """Post the first body; its answer must equal scikit-learn's predict on the same rows (AssertionError if not)."""
    estimator, manifest = load_model(model_dir)
    body = workload.bodies[0]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", workload.path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read()
    finally:
        connection.close()
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        answer = text[:200]
    version = manifest.version if check_version else None
    problem = answer_problem(workload, body, response.status, answer, estimator, version)
    if problem:
        raise AssertionError(problem)


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
