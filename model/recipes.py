"""Training recipes: the data, the estimator and the feature schema of each model family.

A recipe is pure: given a seed and parameters it returns the same data and the same estimator.
The held-out set of every recipe is fixed (its own seed), so metrics of different versions compare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

# scikit-learn is imported inside the functions that build: it takes seconds, and a CLI's `--help` lists the
# recipes from this module.

HOLDOUT_SEED = 20_240_601


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    type: str  # "number" or "integer"
    unit: str
    description: str
    lower_bound: float | None = None  # a physical floor the margin must not cross


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class RecipeError(ValueError):
    """An unknown recipe, or a parameter it does not take or a value that does not fit; the message says which."""


@dataclass(frozen=True)
class Param:
    """One recipe parameter: `--set name=value` on the command line."""

    default: Any
    kind: type[int] | type[float]  # a float parameter takes a whole number too
    minimum: float  # the smallest value that trains
    help: str
    nullable: bool = False  # null is a value too (iris max_depth: no limit)

    def check(self, name: str, value: Any) -> None:
        if value is None and self.nullable:
            return
        kinds: tuple[type[int] | type[float], ...] = (int, float) if self.kind is float else (self.kind,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            wanted = ("a number" if self.kind is float else "an integer") + (" or null" if self.nullable else "")
            raise RecipeError(f"--set {name}={value!r}: {name} takes {wanted}, e.g. {self.describe(name)}")
        if value < self.minimum:
            raise RecipeError(f"--set {name}={value!r}: {name} must be at least {self.minimum:g}")

    def describe(self, name: str) -> str:
        default = "null" if self.default is None else repr(self.default)
        return f"{name}={default} ({self.help})"


@dataclass(frozen=True)
class Recipe:
    name: str
    task: str  # "regression" or "classification"
    target_name: str
    target_unit: str
    features: tuple[FeatureSpec, ...]
    params: Mapping[str, Param]
    load_data: Callable[[int, Mapping[str, Any]], Dataset]
    build: Callable[[int, Mapping[str, Any]], BaseEstimator]
    classes: tuple[str, ...] | None = None
    primary_metric: str = "rmse"
    higher_is_better: bool = False
    notes: str = field(default="")

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: param.default for name, param in self.params.items()}


def _house_rows(rng: np.random.Generator, count: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    # The relationships of the seed tutorial: price ~ size*100 + bedrooms*5000 - age*1000 + noise,
    # floored at 50 000. Size is clipped so no house has a negative area.
    size = np.clip(rng.normal(2000, 500, count), 300, None)
    bedrooms = rng.integers(1, 6, count)
    age = rng.integers(0, 50, count)
    price = size * 100 + bedrooms * 5000 - age * 1000 + rng.normal(0, noise, count)
    price = np.maximum(price, 50_000)
    return np.column_stack([size, bedrooms, age]).astype(np.float64), price


def _house_data(seed: int, params: Mapping[str, Any]) -> Dataset:
    x_train, y_train = _house_rows(np.random.default_rng(seed), int(params["n_samples"]), params["noise"])
    # The held-out set does not depend on the training seed: versions are compared on the same rows.
    x_test, y_test = _house_rows(np.random.default_rng(HOLDOUT_SEED), 500, 10_000.0)
    return Dataset(x_train, y_train, x_test, y_test)


def _house_model(seed: int, params: Mapping[str, Any]) -> BaseEstimator:
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    alpha = float(params["alpha"])
    regressor = LinearRegression() if alpha == 0 else Ridge(alpha=alpha)
    return Pipeline([("scale", StandardScaler()), ("regress", regressor)])


def _iris_data(seed: int, params: Mapping[str, Any]) -> Dataset:
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    iris = load_iris()
    # A fixed stratified split: the training seed only changes the forest, never the held-out rows.
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.3, random_state=HOLDOUT_SEED, stratify=iris.target
    )
    return Dataset(x_train, y_train, x_test, y_test)


def _iris_model(seed: int, params: Mapping[str, Any]) -> BaseEstimator:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    forest = RandomForestClassifier(
        n_estimators=int(params["n_estimators"]),
        max_depth=params["max_depth"],
        random_state=seed,
        n_jobs=1,  # a serving pod owns one core per worker; joblib threads would fight uvicorn
    )
    return Pipeline([("classify", forest)])


RECIPES: dict[str, Recipe] = {
    "house-price": Recipe(
        name="house-price",
        task="regression",
        target_name="price",
        target_unit="USD",
        features=(
            FeatureSpec("size", "number", "sqft", "Living area in square feet", lower_bound=0.0),
            FeatureSpec("bedrooms", "integer", "count", "Number of bedrooms", lower_bound=0.0),
            FeatureSpec("age", "integer", "years", "Age of the house in years", lower_bound=0.0),
        ),
        params={
            "n_samples": Param(2000, int, 2, "training rows"),
            "noise": Param(10_000.0, float, 0.0, "price noise in USD"),
            "alpha": Param(0.0, float, 0.0, "ridge penalty; 0 is plain least squares"),
        },
        load_data=_house_data,
        build=_house_model,
        primary_metric="rmse",
        higher_is_better=False,
    ),
    "iris": Recipe(
        name="iris",
        task="classification",
        target_name="species",
        target_unit="class",
        features=(
            FeatureSpec("sepal_length", "number", "cm", "Sepal length", lower_bound=0.0),
            FeatureSpec("sepal_width", "number", "cm", "Sepal width", lower_bound=0.0),
            FeatureSpec("petal_length", "number", "cm", "Petal length", lower_bound=0.0),
            FeatureSpec("petal_width", "number", "cm", "Petal width", lower_bound=0.0),
        ),
        classes=("setosa", "versicolor", "virginica"),
        params={
            "n_estimators": Param(100, int, 1, "trees in the forest"),
            "max_depth": Param(None, int, 1, "tree depth; null is no limit", nullable=True),
        },
        load_data=_iris_data,
        build=_iris_model,
        primary_metric="accuracy",
        higher_is_better=True,
    ),
}
# What the pipelines and the workflows train when no --recipe is given (MODELSHIP_PIPELINE_RECIPE overrides it).
DEFAULT_RECIPE = "house-price"


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(f"unknown recipe {name!r}; choose one of {', '.join(sorted(RECIPES))}") from None


def resolve_params(recipe: Recipe, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The recipe's defaults with OVERRIDES on top; RecipeError names an unknown parameter or a bad value."""
    for name, value in (overrides or {}).items():
        if name not in recipe.params:
            known = ", ".join(sorted(recipe.params))
            raise RecipeError(f"{recipe.name} has no parameter {name!r}; it takes {known} (`--set NAME=VALUE`)")
        recipe.params[name].check(name, value)
    return {**recipe.defaults, **(overrides or {})}


def describe_recipes() -> str:
    """Every recipe with its parameters and their defaults, for a CLI's `--help`."""
    lines = ["recipes and their parameters (--set NAME=VALUE), with defaults:"]
    for recipe in RECIPES.values():
        lines.append(f"  {recipe.name} ({recipe.task}):")
        lines.extend(f"    {param.describe(name)}" for name, param in recipe.params.items())
    return "\n".join(lines)
