"""Re-measure an artifact on its recipe's fixed held-out set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.artifact import load_model
from model.metrics import score
from model.recipes import get_recipe


def evaluate(artifact_dir: Path) -> dict[str, float]:
    """Load a verified artifact and return its metrics on the recipe's held-out rows.

    Args:
        artifact_dir: an artifact folder written by `python -m model train`.

    Returns:
        The same metric names as the manifest's `metrics`.
    """
    estimator, manifest = load_model(Path(artifact_dir))
    training = manifest.training
    recipe = get_recipe(training.recipe)
    data = recipe.load_data(training.seed, training.params)
    predicted = np.asarray(estimator.predict(data.x_test))
    return score(manifest.task, data.y_test, predicted)
