"""Live drift counters: every bin at zero from start-up, vectorised counts equal to a value-by-value count,
only live traffic counted, and drift off (one line, enabled 0, no bins) for a manifest without a reference."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from model.artifact import MANIFEST
from model.manifest import Manifest
from service.drift import ENABLED, INPUT_BINS, OUTPUT, OUTPUT_BINS, REFERENCE_FRACTION, THRESHOLD, WINDOW, LiveDrift
from service.model_runner import Outputs
from service.sources import LOADCHECK, SOURCE_HEADER
from tests.driftref import with_reference, without_reference

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def house_ref(house_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_reference(house_artifact, tmp_path_factory.mktemp("ref") / "house")


@pytest.fixture(scope="module")
def iris_ref(iris_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_reference(iris_artifact, tmp_path_factory.mktemp("ref") / "iris")


def samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


def named(found: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in found.items() if n == name}


def slow_count(manifest: Manifest, matrix: np.ndarray, outputs: Outputs) -> Samples:
    """The binning rule value by value (bisect_right is searchsorted side="right"): the twin of the batch path."""
    ref = manifest.drift
    assert ref is not None
    counts: Samples = {}

    def add(name: str, labels: dict[str, str]) -> None:
        key = (name, tuple(sorted({"model_version": manifest.version, **labels}.items())))
        counts[key] = counts.get(key, 0.0) + 1

    best_of = outputs.best if outputs.best is not None else outputs.values
    for row, value, best in zip(matrix.tolist(), outputs.values.tolist(), best_of.tolist(), strict=True):
        for name, v in zip(manifest.feature_names, row, strict=True):
            add(f"{INPUT_BINS}_total", {"feature": name, "bin": str(bisect.bisect_right(ref.features[name].edges, v))})
        if ref.output.classes is not None:
            add(f"{OUTPUT_BINS}_total", {"bin": str(ref.output.classes.index(manifest.classes[int(best)]))})  # type: ignore[index]
        else:
            add(f"{OUTPUT_BINS}_total", {"bin": str(bisect.bisect_right(ref.output.edges, value))})
    return counts


def counted(registry: CollectorRegistry) -> Samples:
    found = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name in (f"{INPUT_BINS}_total", f"{OUTPUT_BINS}_total") and s.value:
                found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def random_batch(manifest: Manifest, rng: np.random.Generator, rows: int) -> tuple[np.ndarray, Outputs]:
    lows = np.array([f.min for f in manifest.features])
    highs = np.array([f.max for f in manifest.features])
    matrix = rng.uniform(lows, highs, (rows, len(lows)))
    ref = manifest.drift
    assert ref is not None
    for j, name in enumerate(manifest.feature_names):  # a third of the values exactly on an edge: side="right"
        on_edge = rng.random(rows) < 1 / 3
        matrix[on_edge, j] = rng.choice(ref.features[name].edges, int(on_edge.sum()))
    if manifest.classes is None:
        return matrix, Outputs(np.round(rng.normal(200_000, 80_000, rows), 2), None)
    probabilities = rng.dirichlet(np.ones(len(manifest.classes)), rows)
    return matrix, Outputs(probabilities, probabilities.argmax(axis=1))


@pytest.mark.parametrize("which", ["house_ref", "iris_ref"])
def test_vectorised_counts_equal_a_value_by_value_count(which: str, request: pytest.FixtureRequest) -> None:
    manifest = Manifest.load(request.getfixturevalue(which) / MANIFEST)
    registry = CollectorRegistry()
    drift = LiveDrift(registry, manifest)
    rng = np.random.default_rng(7)
    expected: Samples = {}
    for rows in (1, 2, 37, 100, 1):
        matrix, outputs = random_batch(manifest, rng, rows)
        drift.count(matrix, outputs)
        for key, n in slow_count(manifest, matrix, outputs).items():
            expected[key] = expected.get(key, 0.0) + n
        assert counted(registry) == expected
    ref = manifest.drift
    assert ref is not None
    on_edges = np.array(
        [[ref.features[n].edges[i % len(ref.features[n].edges)] for n in manifest.feature_names] for i in range(12)],
        dtype=np.float64,
    )  # a value on an edge goes to the bin above it
    _, outputs = random_batch(manifest, rng, len(on_edges))
    for rows in (len(on_edges), 1):
        matrix = on_edges[:rows]
        part = Outputs(outputs.values[:rows], None if outputs.best is None else outputs.best[:rows])
        drift.count(matrix, part)
        for key, n in slow_count(manifest, matrix, part).items():
            expected[key] = expected.get(key, 0.0) + n
    assert counted(registry) == expected


def test_every_bin_is_a_series_at_zero_from_start_up(make_client: Callable[..., TestClient], house_ref: Path) -> None:
    manifest = Manifest.load(house_ref / MANIFEST)
    ref = manifest.drift
    assert ref is not None
    found = samples(make_client(house_ref).get("/metrics").text)
    version = (("model_version", manifest.version),)
    inputs = named(found, f"{INPUT_BINS}_total")
    expected = {(("bin", str(i)), ("feature", n), *version) for n, b in ref.features.items() for i in range(b.bins)}
    assert set(inputs) == expected and set(inputs.values()) == {0.0}
    outputs = named(found, f"{OUTPUT_BINS}_total")
    assert set(outputs) == {(("bin", str(i)), *version) for i in range(ref.output.bins)}
    assert set(outputs.values()) == {0.0}
    fractions = named(found, REFERENCE_FRACTION)
    assert fractions[(("bin", "0"), ("feature", "size"), *version)] == ref.features["size"].fractions[0]
    assert len(fractions) == len(expected) + ref.output.bins
    assert named(found, THRESHOLD)[(("feature", OUTPUT), *version)] == ref.output.threshold
    assert named(found, WINDOW) == {version: float(ref.window)}
    assert named(found, ENABLED) == {version: 1.0}


def test_live_requests_are_counted_and_synthetic_ones_are_not(
    make_client: Callable[..., TestClient], iris_ref: Path
) -> None:
    client = make_client(iris_ref)
    one = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    assert client.post("/predict", json={"instances": [one] * 5}, headers={SOURCE_HEADER: LOADCHECK}).status_code == 200
    assert sum(named(samples(client.get("/metrics").text), f"{OUTPUT_BINS}_total").values()) == 0
    assert client.post("/predict", json={"instances": [one] * 5}).status_code == 200
    found = samples(client.get("/metrics").text)
    outputs = named(found, f"{OUTPUT_BINS}_total")
    assert sum(outputs.values()) == 5
    inputs = named(found, f"{INPUT_BINS}_total")
    assert sum(v for k, v in inputs.items() if ("feature", "petal_width") in k) == sum(outputs.values())


def test_drift_is_off_for_a_manifest_without_a_reference(
    make_client: Callable[..., TestClient], house_artifact: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    artifact = without_reference(house_artifact, tmp_path / "old")
    client = make_client(artifact)  # the service's JSON log lines go to stderr (configure_logging)
    lines = [line for line in capfd.readouterr().err.splitlines() if '"logger":"modelship.drift"' in line]
    assert len(lines) == 1 and "no drift reference" in lines[0] and f"{ENABLED} 0" in lines[0], lines
    assert client.post("/predict", json={"size": 2000, "bedrooms": 3, "age": 10}).status_code == 200
    found = samples(client.get("/metrics").text)
    assert set(named(found, ENABLED).values()) == {0.0}
    assert not [name for name, _ in found if name.startswith("modelship_drift_") and name != ENABLED]
