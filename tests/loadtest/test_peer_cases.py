"""The peers' workloads: v1 and v2 bodies of the same rows, answers checked against scikit-learn, and a real KServe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from loadtest.bench.cases import Workload
from loadtest.bench.peer_cases import _kserve, answer_problem, check_answers, protocol_workloads, v1_body
from loadtest.bench.servers import start_server
from model.artifact import load_model
from pipelines.devtools.embedded_pg import free_port
from tests.conftest import ROOT


def _loads(house: Path, iris: Path) -> dict[str, tuple[str, Workload]]:
    return protocol_workloads(load_model(house)[1], load_model(iris)[1])


def test_v1_bodies_are_rows_in_the_manifests_feature_order(house_artifact: Path) -> None:
    names = load_model(house_artifact)[1].feature_names
    row = dict(zip(reversed(names), (3.0, 2.0, 1.0), strict=True))  # keys in another order than the manifest's
    assert orjson.loads(v1_body([row], names)) == {"instances": [[row[n] for n in names]]}


def test_v1_and_v2_send_the_same_rows_to_the_routes_each_protocol_names(
    house_artifact: Path, iris_artifact: Path
) -> None:
    loads = _loads(house_artifact, iris_artifact)
    for family in ("house-1", "iris-1", "house-100"):
        (model, v1), (_, v2) = loads[f"{family}-v1"], loads[f"{family}-v2"]
        assert v1.path == f"/v1/models/{model}:predict" and v2.path == f"/v2/models/{model}/infer"
        assert v1.family == v2.family == family and v1.instances == v2.instances
        for one, two in zip(v1.bodies, v2.bodies, strict=True):
            tensor = orjson.loads(two)["inputs"][0]
            assert orjson.loads(one)["instances"] == tensor["data"] and tensor["shape"][0] == v1.instances


def test_a_modelship_v1_answer_is_checked_for_values_and_version(house_artifact: Path, iris_artifact: Path) -> None:
    """The lead's `POST /v1/models/{name}:predict` contract: {"predictions": [...], "model_version", "request_id"}."""
    for artifact, family in ((house_artifact, "house-100"), (iris_artifact, "iris-1")):
        estimator, manifest = load_model(artifact)
        _, workload = _loads(house_artifact, iris_artifact)[f"{family}-v1"]
        body = workload.bodies[0]
        rows = np.asarray(orjson.loads(body)["instances"], dtype=np.float64)
        right = {"predictions": estimator.predict(rows).tolist(), "model_version": manifest.version, "request_id": "r"}
        assert answer_problem(workload, body, 200, right, estimator, manifest.version) is None
        wrong_values = right | {"predictions": [v + 1 for v in right["predictions"]]}
        assert "disagrees with scikit-learn" in str(answer_problem(workload, body, 200, wrong_values, estimator))
        as_objects = right | {"predictions": [{"prediction": v} for v in right["predictions"]]}
        assert "not plain numbers" in str(answer_problem(workload, body, 200, as_objects, estimator))
        other_version = right | {"model_version": "other"}
        assert "model_version" in str(answer_problem(workload, body, 200, other_version, estimator, manifest.version))
        assert "answered 404" in str(answer_problem(workload, body, 404, {"error": "no route"}, estimator))
        short = right | {"predictions": right["predictions"][:-1]}
        assert answer_problem(workload, body, 200, short, estimator) is not None


@pytest.mark.slow
@pytest.mark.v2
@pytest.mark.parametrize("model", ["house-price", "iris"])
def test_a_real_kserve_answers_v1_and_v2_as_scikit_learn_does(
    model: str, house_artifact: Path, iris_artifact: Path, tmp_path: Path
) -> None:
    """KServe 0.21 from its own venv (loadtest/bench/peers.py) on our model.joblib, each workload and protocol."""
    artifact = house_artifact if model == "house-price" else iris_artifact
    loads = {k: w for k, (name, w) in _loads(house_artifact, iris_artifact).items() if name == model}
    server = start_server(_kserve(f"kserve-{model}", artifact, model, 1), free_port(), tmp_path / "logs", ROOT)
    try:
        for key, workload in sorted(loads.items()):
            check_answers(server.port, workload, artifact)  # AssertionError names the workload that disagrees
            assert key.endswith(("-v1", "-v2"))
    finally:
        server.stop()
    assert {k.rsplit("-", 1)[1] for k in loads} == {"v1", "v2"}


def test_case_keys_name_every_peer_case(house_artifact: Path, iris_artifact: Path, tmp_path: Path) -> None:
    from loadtest.bench.peer_cases import case_keys, peer_cases

    house, iris = load_model(house_artifact)[1], load_model(iris_artifact)[1]
    cases = peer_cases(("kserve",), house_artifact, iris_artifact, house, iris, "postgresql://x", tmp_path, 1, {})
    assert tuple(c.key for c in cases) == case_keys(("kserve",))
    assert {(c.system, c.path) for c in cases} == {("modelship", "v1"), ("modelship", "v2"), ("kserve", "v1"),
                                                   ("kserve", "v2")}  # fmt: skip
