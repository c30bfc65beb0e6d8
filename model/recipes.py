"""Training recipes: the data, the estimator and the feature schema of each model family.

A recipe is pure: given a seed and parameters it returns the same data and the same estimator.
The held-out set of every recipe is fixed (its own seed), so metrics of different versions compare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

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


@dataclass(frozen=True)
class Recipe:
    name: str
    task: str  # "regression" or "classification"
    target_name: str
    target_unit: str
    features: tuple[FeatureSpec, ...]
    defaults: Mapping[str, Any]
    load_data: Callable[[int, Mapping[str, Any]], Dataset]
    build: Callable[[int, Mapping[str, Any]], BaseEstimator]
    classes: tuple[str, ...] | None = None
    primary_metric: str = "rmse"
    higher_is_better: bool = False
    notes: str = field(default="")


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
    alpha = float(params["alpha"])
    regressor = LinearRegression() if alpha == 0 else Ridge(alpha=alpha)
    return Pipeline([("scale", StandardScaler()), ("regress", regressor)])


def _iris_data(seed: int, params: Mapping[str, Any]) -> Dataset:
    iris = load_iris()
    # A fixed stratified split: the training seed only changes the forest, never the held-out rows.
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.3, random_state=HOLDOUT_SEED, stratify=iris.target
    )
    return Dataset(x_train, y_train, x_test, y_test)


def _iris_model(seed: int, params: Mapping[str, Any]) -> BaseEstimator:
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
        defaults={"n_samples": 2000, "noise": 10_000.0, "alpha": 0.0},
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
        defaults={"n_estimators": 100, "max_depth": None},
        load_data=_iris_data,
        build=_iris_model,
        primary_metric="accuracy",
        higher_is_better=True,
    ),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}") from None


def resolve_params(recipe: Recipe, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    unknown = set(overrides or {}) - set(recipe.defaults)
    if unknown:
        raise KeyError(f"unknown parameter(s) {sorted(unknown)} for {recipe.name}; known: {sorted(recipe.defaults)}")
    return {**recipe.defaults, **(overrides or {})}
