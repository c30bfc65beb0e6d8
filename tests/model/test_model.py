"""Model tier: determinism, metric floors, manifest contents, and refusal of tampered artifacts."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import sklearn

from model.__main__ import main as model_cli
from model.artifact import ArtifactError, load_model, sha256_file, verify_artifact
from model.evaluate import evaluate
from model.train import train


def test_same_recipe_and_seed_give_same_version_and_metrics(tmp_path: Path) -> None:
    first = train("house-price", tmp_path / "a", seed=7)
    second = train("house-price", tmp_path / "b", seed=7)
    assert first.version == second.version
    assert first.manifest.metrics == second.manifest.metrics
    assert first.manifest.training.data_fingerprint == second.manifest.training.data_fingerprint
    other = train("house-price", tmp_path / "c", seed=8)
    assert other.version != first.version


def test_retraining_into_the_same_folder_reuses_the_artifact(tmp_path: Path) -> None:
    first = train("house-price", tmp_path)
    again = train("house-price", tmp_path)
    assert again.reused and again.path == first.path


def test_an_older_trainers_folder_is_trained_again_with_a_drift_reference(tmp_path: Path) -> None:
    first = train("house-price", tmp_path)
    manifest = json.loads((first.path / "manifest.json").read_text())
    manifest["schema_version"] = 1  # as the trainer before drift references wrote it
    del manifest["drift"]
    (first.path / "manifest.json").write_text(json.dumps(manifest))
    again = train("house-price", tmp_path)
    assert not again.reused and again.path == first.path
    assert again.manifest.drift is not None
    assert json.loads((again.path / "manifest.json").read_text())["schema_version"] == first.manifest.schema_version


def test_house_price_metrics_floor(house_artifact: Path) -> None:
    metrics = json.loads((house_artifact / "manifest.json").read_text())["metrics"]
    # noise has sd 10 000: an RMSE near it and R² above 0.9 mean the relationships were learned
    assert metrics["rmse"] < 12_000
    assert metrics["r2"] > 0.9


def test_iris_metrics_floor(iris_artifact: Path) -> None:
    metrics = json.loads((iris_artifact / "manifest.json").read_text())["metrics"]
    assert metrics["accuracy"] >= 0.9 and metrics["f1_macro"] >= 0.9


def test_evaluate_reproduces_the_manifest_metrics(house_artifact: Path, iris_artifact: Path) -> None:
    for artifact in (house_artifact, iris_artifact):
        assert evaluate(artifact) == json.loads((artifact / "manifest.json").read_text())["metrics"]


def test_manifest_contents(house_artifact: Path) -> None:
    m = json.loads((house_artifact / "manifest.json").read_text())
    assert m["version"] == house_artifact.name and m["version"].startswith("house-price-")
    assert m["task"] == "regression" and m["target"] == {"name": "price", "unit": "USD"}
    features = {f["name"]: f for f in m["features"]}
    assert list(features) == ["size", "bedrooms", "age"]
    assert features["bedrooms"]["type"] == "integer" and features["size"]["unit"] == "sqft"
    for f in features.values():
        assert f["min"] < f["max"]
    assert features["size"]["min"] <= 2500 <= features["size"]["max"]
    assert set(m["metrics"]) == {"rmse", "mae", "r2"}
    assert m["runtime"]["scikit_learn"] == sklearn.__version__
    assert set(m["runtime"]) >= {"python", "scikit_learn", "joblib"}
    assert m["artifact"]["sha256"] == sha256_file(house_artifact / "model.joblib")
    assert m["training"]["data_fingerprint"].startswith("sha256:")
    assert "git_commit" in m and m["created_at"]


def test_iris_manifest_is_classification(iris_artifact: Path) -> None:
    m = json.loads((iris_artifact / "manifest.json").read_text())
    assert m["task"] == "classification" and m["classes"] == ["setosa", "versicolor", "virginica"]
    assert set(m["metrics"]) == {"accuracy", "f1_macro"}


@pytest.fixture
def copy_of(house_artifact: Path, tmp_path: Path) -> Path:
    target = tmp_path / house_artifact.name
    shutil.copytree(house_artifact, target)
    return target


def test_a_tampered_model_file_is_refused_before_unpickling(copy_of: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # runs at unpickling time, like any payload would

    (copy_of / "model.joblib").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ArtifactError) as info:
        load_model(copy_of)
    assert info.value.check == "sha256" and "refusing to unpickle" in str(info.value)
    assert not marker.exists()


def test_an_artifact_from_another_scikit_learn_is_refused(copy_of: Path) -> None:
    manifest = json.loads((copy_of / "manifest.json").read_text())
    manifest["runtime"]["scikit_learn"] = "0.24.2"
    (copy_of / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as info:
        verify_artifact(copy_of)
    assert info.value.check == "scikit-learn" and "0.24.2" in str(info.value)


def test_allow_list_refuses_unlisted_digests(copy_of: Path) -> None:
    with pytest.raises(ArtifactError) as info:
        verify_artifact(copy_of, allowed_sha256={"0" * 64})
    assert info.value.check == "allow-list"
    digest = sha256_file(copy_of / "model.joblib")
    assert verify_artifact(copy_of, allowed_sha256={digest}).version == copy_of.name


def test_cli_train_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert model_cli(["train", "--recipe", "iris", "--out", str(tmp_path), "--set", "n_estimators=10"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert Path(summary["path"]).is_dir() and summary["version"].startswith("iris-")
    assert model_cli(["evaluate", summary["path"]]) == 0
    assert json.loads(capsys.readouterr().out) == summary["metrics"]
    with pytest.raises(SystemExit) as refused:  # one line on stderr and exit 2 (tests/pipelines/test_cli_bad_input.py)
        model_cli(["train", "--recipe", "iris", "--out", str(tmp_path), "--set", "nope=1"])
    assert refused.value.code == 2
