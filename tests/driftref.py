"""A drift reference built in the tests from a recipe's training data, written into a copy of an artifact.

A stand-in for the training step's own reference (model/train.py) with model/drift.py's types and binning rule:
quantile edges per feature, the output's edges from the model's predictions on the training rows (a classifier:
its classes), every threshold at THRESHOLD_FLOOR. Only manifest.json changes; model.joblib's digest still holds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np

from model.artifact import MANIFEST
from model.drift import BINS, THRESHOLD_FLOOR, BinnedReference, DriftReference
from model.manifest import Manifest
from model.recipes import get_recipe, resolve_params


def binned(values: np.ndarray, threshold: float = THRESHOLD_FLOOR) -> BinnedReference:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return BinnedReference(edges=tuple(edges.tolist()), fractions=tuple((counts / counts.sum()).tolist()),
                           threshold=threshold)  # fmt: skip


def training_rows(manifest: Manifest) -> np.ndarray:
    recipe = get_recipe(manifest.training.recipe)
    data = recipe.load_data(manifest.training.seed, resolve_params(recipe, manifest.training.params))
    return np.asarray(data.x_train, dtype=np.float64)


def reference_for(artifact: Path, window: int) -> DriftReference:
    manifest = Manifest.load(artifact / MANIFEST)
    rows = training_rows(manifest)
    features = {name: binned(rows[:, j]) for j, name in enumerate(manifest.feature_names)}
    estimator = joblib.load(artifact / manifest.artifact.file)  # nosec B301 # our own freshly trained artifact
    if manifest.classes is None:
        output = binned(np.round(estimator.predict(rows), 2))
    else:
        counts = np.bincount(estimator.predict(rows), minlength=len(manifest.classes))
        output = BinnedReference(classes=manifest.classes, fractions=tuple((counts / counts.sum()).tolist()),
                                 threshold=THRESHOLD_FLOOR)  # fmt: skip
    return DriftReference(window=window, features=features, output=output)


def with_reference(artifact: Path, target: Path, window: int = 200) -> Path:
    """A copy of ARTIFACT at TARGET whose manifest carries a drift reference calibrated for WINDOW live values."""
    shutil.copytree(artifact, target)
    raw = json.loads((target / MANIFEST).read_text())
    raw["drift"] = reference_for(artifact, window).model_dump(mode="json")
    (target / MANIFEST).write_text(json.dumps(raw, indent=2) + "\n")
    Manifest.load(target / MANIFEST)  # the contract still holds
    return target


def without_reference(artifact: Path, target: Path) -> Path:
    """A copy of ARTIFACT whose manifest has no `drift` (as one written before references)."""
    shutil.copytree(artifact, target)
    raw = json.loads((target / MANIFEST).read_text())
    raw.pop("drift", None)
    (target / MANIFEST).write_text(json.dumps(raw, indent=2) + "\n")
    return target
