"""One rule set: objects made into a matrix in C and objects walked value by value get the same answer.

`check_objects` builds the matrix in C when every object has exactly the features as JSON numbers, and
walks the objects value by value otherwise; both then apply the same column rules. Forcing the walk
on every batch must not change a single message, warning or value.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from model.manifest import ManifestFeature
from service.errors import InvalidInput
from service.validation import Checked, InstanceValidator

FEATURES = [
    ManifestFeature(name="size", type="number", unit="sqft", description="", min=0.0, max=4000.0),
    ManifestFeature(name="bedrooms", type="integer", unit="count", description="", min=0.0, max=6.0),
    ManifestFeature(name="age", type="integer", unit="years", description="", min=0.0, max=54.0),
]
HOSTILE: list[Any] = [True, None, "3", 3.5, -1, 1e400, float("nan"), 10**30, [1], {"a": 1}, 7, 2.0]


def answer(validator: InstanceValidator, instances: list[Any], walk: bool = False) -> tuple[str, Any]:
    """check_objects' verdict; `walk` forces the value-by-value path, as if C could not build the matrix."""
    if walk:
        validator = _walking(validator)
    try:
        checked: Checked = validator.check_objects(instances, ("body", "instances"), True)
    except InvalidInput as exc:
        return "error", (exc.message, exc.details)
    return "ok", (np.asarray(checked.matrix, dtype=np.float64).tolist(), checked.warnings)


def _walking(validator: InstanceValidator) -> InstanceValidator:
    class Walking(InstanceValidator):
        def _matrix_of(self, instances: list[Any]) -> np.ndarray | None:
            return None

    return Walking(validator.features, "reject" if validator.reject_out_of_range else "flag")


def batch(rng: random.Random, n: int, hostile: float) -> list[Any]:
    instances: list[Any] = []
    for _ in range(n):
        instance: dict[str, Any] = {
            "size": rng.uniform(0, 4000),
            "bedrooms": rng.randint(0, 6),
            "age": rng.randint(0, 54),
        }
        if rng.random() < hostile:
            instance[rng.choice([*instance, "extra"])] = rng.choice(HOSTILE)
        if rng.random() < hostile / 4:
            instance.pop("age")
        instances.append(instance if rng.random() > hostile / 10 else [1, 2, 3])
    return instances


@pytest.mark.parametrize("policy", ["reject", "flag"])
@pytest.mark.parametrize("seed", range(40))
def test_column_wise_equals_value_by_value(policy: str, seed: int) -> None:
    validator = InstanceValidator(FEATURES, policy)
    rng = random.Random(seed)
    instances = batch(rng, rng.choice([1, 2, 10, 100]), hostile=[0.0, 0.01, 0.1, 0.5][seed % 4])
    assert answer(validator, instances) == answer(validator, instances, walk=True)


def test_check_matrix_names_instance_and_field_and_caps_the_details() -> None:
    validator = InstanceValidator(FEATURES, "reject")
    x = np.array([[100.0, 2.0, 3.0]] * 50)
    x[7, 1] = 2.5
    x[:, 2] = 99.0
    with pytest.raises(InvalidInput) as caught:
        validator.check_matrix(x, ("body", "instances"))
    details = caught.value.details
    assert details[0] == {"loc": ["body", "instances", 0, "age"], "field": "instances.0.age",
                          "problem": "99 is outside the range seen in training [0, 54] years"}  # fmt: skip
    assert {"loc": ["body", "instances", 7, "bedrooms"], "field": "instances.7.bedrooms",
            "problem": "must be an integer, got 2.5"} in details  # fmt: skip
    assert len(details) == 20 and caught.value.message.startswith("51 problems")


@pytest.mark.parametrize("policy", ["reject", "flag"])
def test_a_model_of_one_feature_is_checked_column_wise_too(policy: str) -> None:
    validator = InstanceValidator(FEATURES[:1], policy)
    for instances in ([{"size": 1.5}, {"size": 3}], [{"size": 9_999}], [{"size": True}], [{"size": 1, "age": 2}]):
        assert answer(validator, instances) == answer(validator, instances, walk=True)


def test_a_null_reads_got_null() -> None:
    validator = InstanceValidator(FEATURES, "reject")
    verdict, (message, details) = answer(validator, [{"size": None, "bedrooms": 1, "age": 2}])
    assert verdict == "error" and details[0]["problem"] == "must be a JSON number, got null", message


def test_a_matrix_and_its_objects_get_the_same_verdict() -> None:
    """v1 and v2 send a matrix, /predict objects: the same values, the same problems (ints shown as ints)."""
    validator = InstanceValidator(FEATURES, "reject")
    x = np.array([[100.0, 2.5, 3.0], [5000.0, 2.0, 99.0]])
    objects = [{"size": 100.0, "bedrooms": 2.5, "age": 3}, {"size": 5000.0, "bedrooms": 2, "age": 99}]
    with pytest.raises(InvalidInput) as from_matrix:
        validator.check_matrix(x, ("body", "instances"))
    assert answer(validator, objects) == ("error", (from_matrix.value.message, from_matrix.value.details))
