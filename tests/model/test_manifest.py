"""The manifest contract: one typed reader that gives back the file as written and names what is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from model.artifact import ArtifactError, load_manifest
from model.keyvalue import parse_pairs
from model.manifest import Manifest, ManifestError, example_instance


def raw(artifact: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((artifact / "manifest.json").read_text())
    return loaded


@pytest.mark.parametrize("name", ["house_artifact", "iris_artifact"])
def test_the_file_round_trips_key_for_key_and_byte_for_byte(name: str, request: pytest.FixtureRequest) -> None:
    artifact: Path = request.getfixturevalue(name)
    text = (artifact / "manifest.json").read_text()
    manifest = Manifest.load(artifact / "manifest.json")
    assert manifest.to_dict() == json.loads(text)
    assert list(manifest.to_dict()) == list(json.loads(text))  # the key order of the file
    assert json.dumps(manifest.to_dict(), indent=2) + "\n" == text  # what `python -m model train` writes


def test_typed_parts(house_artifact: Path, iris_artifact: Path) -> None:
    house, iris = load_manifest(house_artifact), load_manifest(iris_artifact)
    assert house.task == "regression" and house.classes is None
    assert house.feature_names == ["size", "bedrooms", "age"]
    assert house.features[1].type == "integer" and house.features[1].min <= 3 <= house.features[1].max
    assert house.primary_metric.name == "rmse" and not house.primary_metric.higher_is_better
    assert house.artifact.file == "model.joblib" and len(house.artifact.sha256) == 64
    assert iris.classes == ("setosa", "versicolor", "virginica")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.pop("version"), "version: Field required"),
        (lambda m: m.update(task="ranking"), "task: Input should be 'regression' or 'classification'"),
        (lambda m: m["features"][0].pop("max"), "features.0.max: Field required"),
        (lambda m: m["features"][1].update(min="low"), "features.1.min: Input should be a valid number"),
        (lambda m: m["artifact"].update(sha256=None), "artifact.sha256: Input should be a valid string"),
        (lambda m: m.update(schema_version=3), "has schema_version 3, this code reads 1, 2"),
    ],
)
def test_a_malformed_manifest_names_the_field(house_artifact: Path, change: Any, expected: str) -> None:
    broken = copy.deepcopy(raw(house_artifact))
    change(broken)
    with pytest.raises(ManifestError, match=r"^/model ") as info:
        Manifest.from_dict(broken, "/model")
    assert expected in str(info.value)


def test_a_malformed_file_is_an_artifact_error(house_artifact: Path, tmp_path: Path) -> None:
    broken = raw(house_artifact)
    del broken["features"]
    (tmp_path / "manifest.json").write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match="features: Field required") as info:
        load_manifest(tmp_path)
    assert info.value.check == "manifest"
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="is not a JSON object"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ArtifactError, match="is not valid JSON"):
        load_manifest(tmp_path)


def test_unknown_keys_are_ignored_so_older_readers_load_newer_manifests(house_artifact: Path) -> None:
    extended = raw(house_artifact) | {"drift_baseline": {"size": [1, 2]}}
    assert Manifest.from_dict(extended).to_dict() == raw(house_artifact)


def test_example_instance_is_valid_for_the_model(house_artifact: Path, iris_artifact: Path) -> None:
    house = load_manifest(house_artifact)
    assert example_instance(house.features) == {"size": 2500, "bedrooms": 3, "age": 10}
    widened = Manifest.from_dict(raw(iris_artifact) | {"features": [
        {"name": "stem", "type": "integer", "unit": "mm", "description": "Stem", "min": 1.0, "max": 4.0},
        {"name": "leaf", "type": "number", "unit": "cm", "description": "Leaf", "min": 0.5, "max": 1.25},
    ]})  # fmt: skip
    assert example_instance(widened.features) == {"stem": 2, "leaf": 0.88}  # the middle of unknown features


def test_key_value_pairs() -> None:
    assert parse_pairs(["a=1", "b=x", "c=true", "d=null", "e=a=b"], "--set") == {
        "a": 1, "b": "x", "c": True, "d": None, "e": "a=b"
    }  # fmt: skip
    assert parse_pairs(["a=1", "b=false"], "--config", parse_json=False) == {"a": "1", "b": "false"}
    with pytest.raises(ValueError, match="--floor expects KEY=VALUE, got 'r2'"):
        parse_pairs(["r2"], "--floor")
