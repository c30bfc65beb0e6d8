"""The gate: metric regression and floors, schema compatibility, scikit-learn runtime, baselines."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sklearn

from model.artifact import load_manifest
from model.manifest import Manifest
from pipelines.baseline import stack_baseline
from pipelines.compat import compare_schemas as compare_manifests
from pipelines.gate import GatePolicy, gate, serving_sklearn_version
from pipelines.gate import evaluate_gate as evaluate_manifests
from pipelines.targets.base import ARTIFACT_DIR_KEY, MODEL_VERSION_KEY
from tests.pipelines.fakes import FakeTarget


@pytest.fixture(scope="module")
def base(v1_artifact: Path) -> dict[str, Any]:
    return load_manifest(v1_artifact).to_dict()


# The tests edit manifests as the JSON they are on disk; the stage reads them through Manifest.
def evaluate_gate(candidate: dict[str, Any], baseline: dict[str, Any] | None, policy: GatePolicy, source: str) -> Any:
    return evaluate_manifests(Manifest.from_dict(candidate), Manifest.from_dict(baseline) if baseline else None,
                              policy, source)  # fmt: skip


def compare_schemas(baseline: dict[str, Any], candidate: dict[str, Any]) -> Any:
    return compare_manifests(Manifest.from_dict(baseline), Manifest.from_dict(candidate))


def candidate_from(base: dict[str, Any], **metrics: float) -> dict[str, Any]:
    cand = copy.deepcopy(base)
    cand["version"] = "house-price-cafecafecafe"
    cand["metrics"].update(metrics)
    return cand


def verdicts(result: Any) -> dict[str, bool]:
    return {c.name.split(" ")[0]: c.passed for c in result.checks}


def test_same_model_passes_with_a_readable_table(base: dict[str, Any], policy: GatePolicy) -> None:
    result = evaluate_gate(candidate_from(base), base, policy, "artifact v1")
    assert result.passed
    table = result.table()
    for text in ("rmse (primary, tol 5%)", "r2 floor", "feature schema", "scikit-learn", "result: PASS"):
        assert text in table


def test_regression_beyond_tolerance_fails(base: dict[str, Any], policy: GatePolicy) -> None:
    rmse = base["metrics"]["rmse"]
    within = evaluate_gate(candidate_from(base, rmse=rmse * 1.04), base, policy, "v1")
    beyond = evaluate_gate(candidate_from(base, rmse=rmse * 1.06), base, policy, "v1")
    assert within.passed
    assert not beyond.passed and verdicts(beyond)["rmse"] is False
    assert "FAIL" in beyond.table() and "result: FAIL" in beyond.table()


def test_tolerance_is_configurable(base: dict[str, Any]) -> None:
    cand = candidate_from(base, rmse=base["metrics"]["rmse"] * 1.06)
    assert evaluate_gate(cand, base, GatePolicy(tolerance=0.10), "v1").passed
    assert not evaluate_gate(cand, base, GatePolicy(tolerance=0.0), "v1").passed


def test_higher_is_better_metric_direction(base: dict[str, Any]) -> None:
    clf = copy.deepcopy(base)
    clf["primary_metric"] = {"name": "accuracy", "higher_is_better": True}
    clf["metrics"] = {"accuracy": 0.95}
    worse = candidate_from(clf, accuracy=0.89)
    better = candidate_from(clf, accuracy=0.99)
    assert not evaluate_gate(worse, clf, GatePolicy(tolerance=0.05), "v1").passed
    assert evaluate_gate(better, clf, GatePolicy(tolerance=0.05), "v1").passed


def test_absolute_floor_fails_even_without_baseline(base: dict[str, Any]) -> None:
    poor = candidate_from(base, r2=0.5)
    result = evaluate_gate(poor, None, GatePolicy(floors={"r2": 0.8}), "none")
    assert not result.passed
    assert verdicts(result) == {"rmse": True, "r2": False, "feature": True, "scikit-learn": True}


def test_floor_of_a_lower_is_better_metric_is_a_ceiling(base: dict[str, Any]) -> None:
    result = evaluate_gate(candidate_from(base, rmse=12_000.0), None, GatePolicy(floors={"rmse": 11_000}), "none")
    assert not result.passed
    assert "<= 11000" in result.table()


def test_removed_feature_is_breaking_unless_allowed(base: dict[str, Any], policy: GatePolicy) -> None:
    cand = candidate_from(base)
    cand["features"] = cand["features"][:2]
    blocked = evaluate_gate(cand, base, policy, "v1")
    assert not blocked.passed
    assert any("feature age removed" in n for n in blocked.notes)
    allowed = evaluate_gate(cand, base, GatePolicy(allow_breaking=True), "v1")
    assert allowed.passed
    assert any("--allow-breaking" in n for n in allowed.notes)


def test_schema_compatibility_rules(base: dict[str, Any]) -> None:
    widened = copy.deepcopy(base)
    widened["features"][1]["type"] = "number"  # bedrooms integer -> number: old requests stay valid
    assert compare_schemas(base, widened).compatible
    narrowed = compare_schemas(widened, base)
    assert narrowed.breaking == ["feature bedrooms: type number -> integer"]
    added = copy.deepcopy(base)
    added["features"].append({**base["features"][0], "name": "garage"})
    assert compare_schemas(base, added).breaking == ["feature garage added: existing clients do not send it"]
    unit = copy.deepcopy(base)
    unit["features"][0]["unit"] = "m2"
    assert not compare_schemas(base, unit).compatible
    shrunk = copy.deepcopy(base)
    shrunk["features"][0]["max"] = base["features"][0]["max"] / 2
    diff = compare_schemas(base, shrunk)
    assert diff.compatible and "narrower" in diff.notes[0]


def test_sklearn_mismatch_with_the_serving_image_fails(base: dict[str, Any]) -> None:
    cand = candidate_from(base)
    cand["runtime"]["scikit_learn"] = "1.5.2"
    result = evaluate_gate(cand, base, GatePolicy(), "v1")
    assert not result.passed and verdicts(result)["scikit-learn"] is False
    assert evaluate_gate(cand, base, GatePolicy(serving_sklearn="1.5.2"), "v1").passed


def test_serving_version_is_the_pyproject_pin(tmp_path: Path) -> None:
    assert serving_sklearn_version() == sklearn.__version__  # the venv installs the pin
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('dependencies = ["scikit-learn==1.4.0", "numpy"]\n')
    assert serving_sklearn_version(pyproject) == "1.4.0"
    assert serving_sklearn_version(tmp_path / "missing.toml") == sklearn.__version__


def test_gate_on_real_artifacts(v1_artifact: Path, v2_artifact: Path, policy: GatePolicy) -> None:
    result = gate(v2_artifact, v1_artifact, policy)
    assert result.passed, result.table()
    assert result.baseline_version == v1_artifact.name
    assert result.candidate_version == v2_artifact.name


def test_stack_baseline_is_the_deployed_model(v1_artifact: Path, v2_artifact: Path, fake_target: FakeTarget) -> None:
    assert stack_baseline(fake_target, "dev") is None  # nothing deployed: first release
    stack = fake_target.select("dev", create=True)
    for artifact in (v1_artifact, v2_artifact):
        stack.set_config({MODEL_VERSION_KEY: artifact.name, ARTIFACT_DIR_KEY: str(artifact)})
        stack.up("deploy")
    stack.fail_up.add("broken")
    stack.set_config({MODEL_VERSION_KEY: "broken", ARTIFACT_DIR_KEY: "/nowhere"})
    with pytest.raises(Exception, match="failed"):
        stack.up("deploy broken")
    found = stack_baseline(fake_target, "dev")
    assert found is not None
    assert found.manifest.version == v2_artifact.name  # a failed update changes nothing
    assert "update #2" in found.source


def test_stack_baseline_falls_back_to_the_service(
    fake_target: FakeTarget, monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    stack = fake_target.select("prod", create=True)
    stack.set_config({MODEL_VERSION_KEY: base["version"], ARTIFACT_DIR_KEY: "/ci-runner/artifacts/gone"})
    stack.up("deploy")
    served = Manifest.from_dict(json.loads(json.dumps(base)))
    monkeypatch.setattr("pipelines.baseline._from_service", lambda url, timeout, key: served)
    found = stack_baseline(fake_target, "prod")
    assert found is not None and found.manifest.version == base["version"]
    assert "http://prod.fake/model" in found.source


def test_stack_baseline_sends_the_api_key_to_a_stack_with_auth(
    fake_target: FakeTarget, monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    """Prod has auth.required: the gate's /model request carries the key (issue 9: it got 401 without)."""
    stack = fake_target.select("prod", create=True)
    stack.set_config({MODEL_VERSION_KEY: base["version"], ARTIFACT_DIR_KEY: "/ci-runner/artifacts/gone"})
    stack.up("deploy")
    seen: list[dict[str, str]] = []

    def get(url: str, timeout: float, headers: dict[str, str]) -> httpx.Response:
        seen.append(headers)
        status = 200 if headers.get("Authorization") == "Bearer prod-key" else 401
        return httpx.Response(status, json=base, request=httpx.Request("GET", url))

    monkeypatch.setattr("pipelines.baseline.httpx.get", get)
    found = stack_baseline(fake_target, "prod", api_key="prod-key")
    assert found is not None and found.manifest.version == base["version"]
    assert seen == [{"Authorization": "Bearer prod-key"}]
