"""Train a recipe into a versioned artifact folder: model.joblib + manifest.json."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from model.artifact import MANIFEST, MODEL_FILE, ArtifactError, sha256_file, verify_artifact
from model.drift import DriftReference, build_reference
from model.manifest import (
    SCHEMA_VERSION,
    ArtifactFile,
    Manifest,
    ManifestFeature,
    PredictionTarget,
    PrimaryMetric,
    Runtime,
    Training,
)
from model.metrics import score
from model.recipes import Dataset, FeatureSpec, Recipe, get_recipe, resolve_params

RANGE_MARGIN = 0.10  # accept values up to 10% of the training span beyond what training saw


@dataclass(frozen=True)
class TrainResult:
    path: Path
    version: str
    manifest: Manifest
    reused: bool = False


def data_fingerprint(data: Dataset) -> str:
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train):
        digest.update(np.ascontiguousarray(array).tobytes())
    return "sha256:" + digest.hexdigest()


def derive_version(recipe: str, seed: int, params: Mapping[str, Any], fingerprint: str) -> str:
    identity = json.dumps(
        {"recipe": recipe, "seed": seed, "params": params, "data": fingerprint, "sklearn": sklearn.__version__},
        sort_keys=True,
    )
    return f"{recipe}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def feature_schema(recipe: Recipe, x_train: np.ndarray) -> tuple[ManifestFeature, ...]:
    return tuple(_feature(spec, x_train[:, column]) for column, spec in enumerate(recipe.features))


def _feature(spec: FeatureSpec, seen: np.ndarray) -> ManifestFeature:
    low, high = float(seen.min()), float(seen.max())
    margin = (high - low) * RANGE_MARGIN
    low, high = low - margin, high + margin
    if spec.lower_bound is not None:
        low = max(low, spec.lower_bound)
    if spec.type == "integer":
        low, high = float(np.floor(low)), float(np.ceil(high))
    return ManifestFeature(
        name=spec.name,
        type=spec.type,
        unit=spec.unit,
        description=spec.description,
        min=round(low, 4),
        max=round(high, 4),
    )


def drift_reference(spec: Recipe, estimator: Any, x_train: np.ndarray, seed: int) -> DriftReference:
    """The training rows' drift reference: the features, and the model's output on the same rows as the service
    computes it (a regression's values; a classifier's most probable class, in estimator order)."""
    if spec.task == "classification":
        output = np.argmax(estimator.predict_proba(x_train), axis=1)
    else:
        output = np.asarray(estimator.predict(x_train), dtype=np.float64)
    names = [feature.name for feature in spec.features]
    return build_reference(x_train, names, output, spec.classes if spec.task == "classification" else None, seed)


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the checkout at `cwd` (default: the current folder); None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True, cwd=cwd
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _reuse(target: Path) -> TrainResult | None:
    if not target.exists():
        return None
    try:
        manifest = verify_artifact(target)
    except ArtifactError:
        shutil.rmtree(target)
        return None
    if manifest.schema_version < SCHEMA_VERSION:  # an older trainer's: no drift reference, so trained again
        shutil.rmtree(target)
        return None
    return TrainResult(target, manifest.version, manifest, reused=True)


def train(recipe: str, out_dir: Path, seed: int = 42, overrides: Mapping[str, Any] | None = None) -> TrainResult:
    """Train RECIPE and write out_dir/<version>/. An intact folder for the same version is reused, unless an
    older trainer wrote it (a lower manifest schema_version, e.g. without the drift reference).

    Args:
        recipe: a name from model.recipes.RECIPES ("house-price", "iris").
        out_dir: parent folder of the artifact folders.
        seed: the training seed; the held-out set does not depend on it.
        overrides: recipe parameters to change (see the recipe's defaults).

    Returns:
        TrainResult with the artifact's path, version and manifest.
    """
    spec = get_recipe(recipe)
    params = resolve_params(spec, overrides)
    data = spec.load_data(seed, params)
    fingerprint = data_fingerprint(data)
    version = derive_version(spec.name, seed, params, fingerprint)
    target = Path(out_dir) / version
    if (existing := _reuse(target)) is not None:
        return existing

    estimator = spec.build(seed, params)
    estimator.fit(data.x_train, data.y_train)
    metrics = score(spec.task, data.y_test, estimator.predict(data.x_test))

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=out_dir))
    joblib.dump(estimator, staging / MODEL_FILE)
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        name=spec.name,
        version=version,
        task=spec.task,
        target=PredictionTarget(name=spec.target_name, unit=spec.target_unit),
        classes=spec.classes or None,
        features=feature_schema(spec, data.x_train),
        metrics=metrics,
        primary_metric=PrimaryMetric(name=spec.primary_metric, higher_is_better=spec.higher_is_better),
        training=Training(
            recipe=spec.name,
            seed=seed,
            params=params,
            data_fingerprint=fingerprint,
            n_train=len(data.y_train),
            n_test=len(data.y_test),
        ),
        runtime=Runtime(
            python=platform.python_version(),
            scikit_learn=sklearn.__version__,
            joblib=joblib.__version__,
            numpy=np.__version__,
        ),
        artifact=ArtifactFile(file=MODEL_FILE, sha256=sha256_file(staging / MODEL_FILE)),
        git_commit=git_commit(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        drift=drift_reference(spec, estimator, data.x_train, seed),
    )
    (staging / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    # Readable by the image build and other users; mkdtemp made it 0700.
    os.chmod(staging, 0o755)  # noqa: S103  # nosec B103
    staging.rename(target)  # atomic: a reader never sees a half-written artifact
    return TrainResult(target, version, manifest)
