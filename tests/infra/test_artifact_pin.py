"""The Deployment pins the served artifact's sha256 (from its manifest) through the allow-list."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.components.image import REPO_ROOT, artifact_sha256
from tests.infra.support import run_stack

VERSION = "house-price-a1b2c3d4e5f6"
SHA256 = "cd" * 32


@pytest.fixture(scope="module")
def artifact(house_artifact: Path) -> Iterator[str]:
    folder = REPO_ROOT / "artifacts" / VERSION
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((house_artifact / "manifest.json").read_text())  # a whole one: infra reads it typed
    manifest["version"], manifest["artifact"]["sha256"] = VERSION, SHA256
    (folder / "manifest.json").write_text(json.dumps(manifest))
    yield f"artifacts/{VERSION}"
    if created:
        shutil.rmtree(folder)


def settings(stack: str, overrides: dict[str, str]) -> dict[str, str]:
    data: dict[str, str] = run_stack(stack, overrides).one("ConfigMap").inputs["data"]
    return data


def test_the_manifest_sha256_is_read_and_a_missing_folder_gives_none(artifact: str, tmp_path: Path) -> None:
    assert artifact_sha256(artifact) == SHA256
    assert artifact_sha256(str(tmp_path / "absent")) == ""


def test_deployment_allows_only_the_served_artifact(artifact: str) -> None:
    data = settings("dev", {"modelVersion": VERSION, "artifactDir": artifact})
    assert data["MODELSHIP_ALLOWED_ARTIFACT_SHA256"] == SHA256


def test_an_explicit_allow_list_wins(artifact: str) -> None:
    explicit = "ef" * 32
    data = settings(
        "dev", {"modelVersion": VERSION, "artifactDir": artifact, "service.allowedArtifactSha256": explicit}
    )
    assert data["MODELSHIP_ALLOWED_ARTIFACT_SHA256"] == explicit
