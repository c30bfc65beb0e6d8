"""The artifact on disk: manifest.json + model.joblib, and the checks that make loading it safe.

Unpickling runs arbitrary code chosen by whoever wrote the file (pickle's REDUCE opcode calls any
importable callable). So `load_model` never touches model.joblib before its sha256 matches the
manifest, the digest is on the optional allow-list, and the scikit-learn that wrote it is ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

import joblib
import sklearn

from model.manifest import Manifest, ManifestError

MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"


class ArtifactError(Exception):
    """An artifact that must not be loaded; the message says which check failed and what to do."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(artifact_dir: Path) -> Manifest:
    path = Path(artifact_dir) / MANIFEST
    if not path.is_file():
        raise ArtifactError("manifest", f"{path} does not exist; train one with `python -m model train`")
    try:
        return Manifest.load(path)
    except ManifestError as exc:
        raise ArtifactError("manifest", f"{exc}; retrain the artifact") from exc


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def verify_artifact(artifact_dir: Path, allowed_sha256: Collection[str] | None = None) -> Manifest:
    """Check an artifact without unpickling it; return its manifest or raise ArtifactError."""
    artifact_dir = Path(artifact_dir)
    manifest = load_manifest(artifact_dir)
    model_path = artifact_dir / manifest.artifact.file
    if not model_path.is_file():
        raise ArtifactError("model-file", f"{model_path} is missing; the artifact folder is incomplete")
    expected = manifest.artifact.sha256
    actual = sha256_file(model_path)
    if actual != expected:
        raise ArtifactError(
            "sha256",
            f"{model_path} has sha256 {actual} but the manifest says {expected}. The file was changed "
            "after training; refusing to unpickle it. Retrain or restore the original artifact.",
        )
    if allowed_sha256 and actual not in allowed_sha256:
        raise ArtifactError(
            "allow-list",
            f"{model_path} (sha256 {actual}) is not in MODELSHIP_ALLOWED_ARTIFACT_SHA256; add its digest "
            "there if this artifact is trusted.",
        )
    trained_with = manifest.runtime.scikit_learn
    if _minor(trained_with) != _minor(sklearn.__version__):
        raise ArtifactError(
            "scikit-learn",
            f"the model was trained with scikit-learn {trained_with} but this process has "
            f"{sklearn.__version__}; pickles are not portable across versions. Retrain with "
            f"{sklearn.__version__} or serve with an image that pins {trained_with}.",
        )
    return manifest


def load_model(artifact_dir: Path, allowed_sha256: Collection[str] | None = None) -> tuple[Any, Manifest]:
    """Verify, then unpickle. Returns (estimator, manifest)."""
    manifest = verify_artifact(artifact_dir, allowed_sha256)
    # Safe only because verify_artifact matched the sha256 (and allow-list) just above.
    estimator = joblib.load(Path(artifact_dir) / manifest.artifact.file)  # nosec B301
    return estimator, manifest
