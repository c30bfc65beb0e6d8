"""What every baseline server shares: the same artifact, loaded the same way (env BENCH_MODEL_DIR)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib

from model.manifest import Manifest


def load_artifact() -> tuple[Any, Manifest]:
    """(fitted estimator, manifest) of the artifact folder named by BENCH_MODEL_DIR."""
    folder = Path(os.environ["BENCH_MODEL_DIR"])
    manifest = Manifest.load(folder / "manifest.json")
    # A baseline, not the service: it trusts the artifact the harness just trained (no digest check).
    estimator = joblib.load(folder / manifest.artifact.file)  # nosec B301
    return estimator, manifest


def feature_names(manifest: Manifest) -> list[str]:
    return manifest.feature_names
