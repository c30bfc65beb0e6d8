"""The manifest: one typed contract for manifest.json, which every package reads.

`python -m model train` writes it, the service serves it at GET /model, the pipelines gate and smoke
on it, and Locust draws its payloads from it. All of them read it through `Manifest`, so a key is
named in one place and a malformed file fails on load with the field that is wrong, not later with a
KeyError. The JSON stays what it was: `to_dict()` gives back the dict the file holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from model.drift import DriftReference

SCHEMA_VERSION = 2  # 2 adds `drift`, the training data's reference; version 1 still loads, without it
READABLE_VERSIONS = frozenset({1, 2})

# The seed tutorial's example values: OpenAPI examples and smoke requests show a real house or
# flower rather than a midpoint. Other features get the middle of their training range.
SEED_VALUES: dict[str, float] = {
    "size": 2500,
    "bedrooms": 3,
    "age": 10,
    "sepal_length": 5.1,
    "sepal_width": 3.5,
    "petal_length": 1.4,
    "petal_width": 0.2,
}


class ManifestError(ValueError):
    """A manifest that does not match the contract; the message names the field and the problem."""


class _Part(BaseModel):
    # Unknown keys are ignored, so a reader still loads a manifest that a newer writer extended.
    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())


class ManifestFeature(_Part):
    """One input of the model, with the range seen in training (widened by a margin)."""

    name: str
    type: Literal["number", "integer"]
    unit: str
    description: str
    min: float
    max: float

    def midpoint(self) -> float:
        middle = (self.min + self.max) / 2
        return round(middle) if self.type == "integer" else round(middle, 2)


class PredictionTarget(_Part):
    name: str
    unit: str


class PrimaryMetric(_Part):
    name: str
    higher_is_better: bool


class Training(_Part):
    recipe: str
    seed: int
    params: dict[str, Any]
    data_fingerprint: str
    n_train: int
    n_test: int


class Runtime(_Part):
    python: str
    scikit_learn: str
    joblib: str
    numpy: str


class ArtifactFile(_Part):
    file: str
    sha256: str


class Manifest(_Part):
    """manifest.json; the field order is the file's key order."""

    schema_version: int
    name: str
    version: str
    task: Literal["regression", "classification"]
    target: PredictionTarget
    classes: tuple[str, ...] | None
    features: tuple[ManifestFeature, ...]
    metrics: dict[str, float]
    primary_metric: PrimaryMetric
    training: Training
    runtime: Runtime
    artifact: ArtifactFile
    git_commit: str | None
    created_at: str
    drift: DriftReference | None = None  # None in a manifest written before references: drift is then off

    @classmethod
    def from_dict(cls, raw: Any, source: str = "the manifest") -> Manifest:
        """Validate a parsed manifest (a file's JSON, or a service's GET /model body)."""
        if not isinstance(raw, dict):
            raise ManifestError(f"{source} is not a JSON object")
        if raw.get("schema_version") not in READABLE_VERSIONS:
            raise ManifestError(
                f"{source} has schema_version {raw.get('schema_version')!r}, this code reads "
                f"{', '.join(map(str, sorted(READABLE_VERSIONS)))}"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ManifestError(f"{source} does not match the manifest contract: {_problems(exc)}") from exc

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read and validate a manifest.json file."""
        try:
            raw = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path} is not valid JSON ({exc})") from exc
        return cls.from_dict(raw, str(path))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of manifest.json, key for key (an earlier manifest gains no `drift: null`)."""
        raw = self.model_dump(mode="json")
        if raw.get("drift") is None:
            raw.pop("drift", None)
        return raw

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]


def example_instance(features: Sequence[ManifestFeature]) -> dict[str, float]:
    """One valid instance (OpenAPI's example, a smoke request): the seed's value of a feature when
    known, else the middle of its training range."""
    return {f.name: SEED_VALUES.get(f.name, f.midpoint()) for f in features}


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
