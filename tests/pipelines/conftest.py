"""Fixtures of the pipelines tests: two real house-price versions, and an in-memory target."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.train import train
from pipelines.gate import GatePolicy
from tests.pipelines.fakes import FakeChecks, FakeTarget


@pytest.fixture(scope="session")
def v1_artifact(house_artifact: Path) -> Path:
    return house_artifact


@pytest.fixture(scope="session")
def v2_artifact(artifacts_dir: Path) -> Path:
    """Same recipe, another seed: another version with nearly the same metrics."""
    return train("house-price", artifacts_dir, seed=7).path


@pytest.fixture
def policy() -> GatePolicy:
    return GatePolicy(tolerance=0.05, floors={"r2": 0.8, "accuracy": 0.85}, serving_sklearn=None)


@pytest.fixture
def fake_target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
def checks() -> FakeChecks:
    return FakeChecks()
