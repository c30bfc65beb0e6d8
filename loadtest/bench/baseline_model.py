"""What every baseline server shares: the same artifact, loaded the same way (env BENCH_MODEL_DIR)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import joblib


def load_artifact() -> tuple[Any, dict[str, Any]]:
    """(fitted estimator, manifest) of the artifact folder named by BENCH_MODEL_DIR."""
    folder = Path(os.environ["BENCH_MODEL_DIR"])
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    # A baseline, not the service: it trusts the artifact the harness just trained (no digest check).
    estimator = joblib.load(folder / manifest["artifact"]["file"])  # nosec B301
    return estimator, manifest


def feature_names(manifest: dict[str, Any]) -> list[str]:
    return [feature["name"] for feature in manifest["features"]]
