"""`make manifests` warns when the stack's modelVersion is the placeholder or names no artifact here."""

from __future__ import annotations

from pathlib import Path

from infra import contract
from infra.render import model_version_problem


def _config(**keys: str) -> dict[str, str]:
    return {contract.full_key(k): v for k, v in keys.items()}


def test_the_placeholder_and_a_missing_artifact_are_named(house_artifact: Path) -> None:
    placeholder = model_version_problem("dev", _config(modelVersion="house-price-000000000000"))
    assert placeholder and "placeholder" in placeholder and "pulumi config set modelVersion" in placeholder
    assert "placeholder" in (model_version_problem("dev", _config(modelVersion="")) or "")
    missing = model_version_problem("dev", _config(modelVersion="house-price-3f9a0c1b2d4e"))
    assert missing and "artifacts/house-price-3f9a0c1b2d4e/manifest.json is not here" in missing
    here = _config(modelVersion=house_artifact.name, artifactDir=str(house_artifact))
    assert model_version_problem("dev", here) is None
    by_digest = _config(**{"modelVersion": "house-price-3f9a0c1b2d4e", "image.digestRef": "r/m@sha256:" + "a" * 64})
    assert model_version_problem("dev", by_digest) is None
