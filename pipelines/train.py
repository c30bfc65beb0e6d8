"""Stage `train`: build a versioned artifact with model/ and say where it is."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.recipes import DEFAULT_RECIPE, RECIPES, RecipeError, describe_recipes
from model.train import train as train_model
from pipelines import commands
from pipelines.errors import ConfigError
from pipelines.settings import PipelineSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainStageResult:
    path: Path
    version: str
    recipe: str
    seed: int
    metrics: dict[str, float]
    primary_metric: str
    reused: bool


def train(recipe: str, out_dir: Path, seed: int = 42, overrides: Mapping[str, Any] | None = None) -> TrainStageResult:
    """Train RECIPE into OUT_DIR/<version>/ (an intact artifact of the same version is reused).

    Args:
        recipe: a model/ recipe name, e.g. "house-price" or "iris".
        out_dir: parent folder of artifact folders.
        seed: training seed; another seed gives another version.
        overrides: recipe parameters, as `--set key=value` on the command line.

    Returns:
        TrainStageResult with the artifact's path, version and held-out metrics.
    """
    try:
        result = train_model(recipe, Path(out_dir), seed=seed, overrides=dict(overrides or {}))
    except RecipeError as exc:
        raise ConfigError(str(exc)) from None
    manifest = result.manifest
    log.info("trained %s -> %s%s", recipe, result.path, " (reused)" if result.reused else "")
    return TrainStageResult(
        path=result.path.absolute(),
        version=result.version,
        recipe=recipe,
        seed=seed,
        metrics=dict(manifest.metrics),
        primary_metric=manifest.primary_metric.name,
        reused=result.reused,
    )


# ---- command line --------------------------------------------------------------------------------------------


def train_options(parser: argparse.ArgumentParser, required: bool) -> None:
    """What to train; release shares these (its recipe is optional: it may get an --artifact instead)."""
    parser.epilog = describe_recipes()
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help=f"what to train (default: MODELSHIP_PIPELINE_RECIPE, else {DEFAULT_RECIPE}, what the workflows ship)",
    )
    parser.add_argument("--out", type=Path, help="artifact folder (default: artifacts/)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe parameter (repeatable)",
    )


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    recipe = args.recipe or settings.recipe
    result = train(recipe, args.out or settings.artifacts_dir, args.seed, commands.pairs(args.overrides, "--set"))
    commands.out(f"path={result.path}\nversion={result.version}")
    return commands.finish(args, "train", result, True)


STAGE = commands.Stage(
    "train", "train a recipe into a versioned artifact", lambda p: train_options(p, required=True), _run
)
