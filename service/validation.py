"""Validate request instances against the manifest's feature schema: one rule set, naming every bad field.

The rules on values (finite, integral where the schema says integer, inside the training range under
the range policy) run once, column-wise with numpy, on the float64 matrix every protocol ends up
with. JSON objects (the /predict protocol) first become that matrix in C (`operator.itemgetter` over
the objects, one type check over all values); only an object that cannot (not an object, a missing or
unknown field, a value that is not a JSON number) is walked value by value, and only to say what is
wrong with its shape. Its numbers still go through the same column rules, so both paths give the same
verdict and the same words, and a problem always names the instance and the field.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from model.manifest import ManifestFeature
from service.errors import InvalidInput, detail, summary

MAX_PROBLEMS = 20  # the body names this many; the message gives the total
Loc = tuple[Any, ...]
Show = Callable[[int, int], str]  # (instance, feature) -> the value as the client sent it


@dataclass
class Checked:
    matrix: np.ndarray  # float64 [N, n_features] in feature order
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class _Problem:
    instance: int
    column: int  # the feature's position; -1 for the instance itself or a field the schema lacks
    loc: Loc
    text: str


class InstanceValidator:
    def __init__(self, features: Sequence[ManifestFeature], range_policy: str) -> None:
        self.features = tuple(features)
        self.names = [f.name for f in self.features]
        self.name_set = frozenset(self.names)
        self.reject_out_of_range = range_policy == "reject"
        self.mins = np.array([f.min for f in self.features], dtype=np.float64)
        self.maxs = np.array([f.max for f in self.features], dtype=np.float64)
        self.integral = np.array([f.type == "integer" for f in self.features])
        self.integral_columns = np.flatnonzero(self.integral)
        self.row_of = values_in_order(self.names)

    # -- the two entry points -----------------------------------------------------------------
    def check_objects(self, instances: list[Any], loc: Loc, many: bool) -> Checked:
        """JSON objects keyed by feature name; `many` locates problems by index (`loc.i.field`)."""
        locate = _locator(loc, many)
        matrix = self._matrix_of(instances)
        problems: list[_Problem] = []
        if matrix is None:
            matrix, valid = self._explain_shape(instances, locate, problems)
        else:
            valid = None

        def show(i: int, j: int) -> str:
            return _show(instances[i][self.names[j]])

        warnings = self._apply_rules(matrix, valid, show, locate, problems)
        return Checked(matrix, warnings)

    def check_matrix(self, matrix: np.ndarray, loc: Loc) -> list[str]:
        """A float64 matrix in feature order (v1 rows, v2 tensors); returns the range warnings."""
        return self._apply_rules(matrix, None, self._show_number(matrix), _locator(loc, True), [])

    # -- the rules on values: one implementation ----------------------------------------------
    def _apply_rules(
        self, matrix: np.ndarray, valid: np.ndarray | None, show: Show, locate: Callable[[int, str | None], Loc],
        problems: list[_Problem],
    ) -> list[str]:  # fmt: skip
        """Raise InvalidInput for every problem (`problems` so far, and the values' own); return the warnings."""
        if valid is None and not problems and self._all_clean(matrix):
            return []  # the common case, in a few whole-matrix operations
        finite = np.isfinite(matrix)
        checked = finite if valid is None else finite & valid
        fraction = checked & self.integral & (matrix != np.floor(matrix))
        outside = checked & ~fraction & ((matrix < self.mins) | (matrix > self.maxs))
        if not problems and checked.all() and not outside.any() and not fraction.any():
            return []
        unfinite = ~finite if valid is None else ~finite & valid
        reject = self.reject_out_of_range
        count = len(problems) + int(unfinite.sum()) + int(fraction.sum()) + (int(outside.sum()) if reject else 0)
        found = [(i, j, f"must be a finite number, got {float(matrix[i, j])}") for i, j in _cells(unfinite)]
        found += [(i, j, f"must be an integer, got {show(i, j)}") for i, j in _cells(fraction)]
        ranged = [(i, j, outside_range(show(i, j), self.features[j])) for i, j in _cells(outside, every=not reject)]
        if reject:
            found += ranged
        problems += [_Problem(i, j, locate(i, self.names[j]), text) for i, j, text in found]
        if problems:
            raise _invalid(problems, count)
        return [f"{_dotted(locate(i, self.names[j]))}: {text}" for i, j, text in ranged]

    def _all_clean(self, matrix: np.ndarray) -> bool:
        """Every value inside its range (so finite: the ranges are) and integral where it must be."""
        if not ((matrix >= self.mins) & (matrix <= self.maxs)).all():
            return False
        if not len(self.integral_columns):
            return True
        integral = matrix[:, self.integral_columns]
        return bool((integral == np.floor(integral)).all())

    # -- JSON objects -------------------------------------------------------------------------
    def _matrix_of(self, instances: list[Any]) -> np.ndarray | None:
        # map() over C callables: no Python frame per instance or per value. An object holds exactly the
        # features when it has as many keys and each feature is among them (the getter raises otherwise).
        width = len(self.names)
        if set(map(type, instances)) != _DICT or set(map(len, instances)) != {width}:
            return None
        try:
            values = list(chain.from_iterable(map(self.row_of, instances)))
        except KeyError:
            return None
        if not set(map(type, values)) <= _NUMBERS:  # bool is not int here: True must not pass as 1
            return None
        try:
            return np.array(values, dtype=np.float64).reshape(len(instances), width)
        except OverflowError:
            return None

    def _explain_shape(
        self, instances: list[Any], locate: Callable[[int, str | None], Loc], problems: list[_Problem]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Value by value, what keeps objects from being a matrix; the numbers found, and where they are."""
        matrix = np.zeros((len(instances), len(self.names)), dtype=np.float64)
        valid = np.zeros(matrix.shape, dtype=bool)
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                text = f"must be an object with fields {self.names}, got {kind_of(instance)}"
                problems.append(_Problem(i, -1, locate(i, None), text))
                continue
            for extra in sorted(instance.keys() - self.name_set):
                problems.append(_Problem(i, -1, locate(i, extra), f"unknown field; expected only {self.names}"))
            for j, feature in enumerate(self.features):
                problem = self._shape_problem(feature, instance.get(feature.name, _MISSING))
                if problem is None:
                    matrix[i, j], valid[i, j] = float(instance[feature.name]), True
                else:
                    problems.append(_Problem(i, j, locate(i, feature.name), problem))
        return matrix, valid

    @staticmethod
    def _shape_problem(feature: ManifestFeature, value: Any) -> str | None:
        if value is _MISSING:
            return f"missing required field ({feature.type}, {feature.unit})"
        kind = type(value)
        if kind is bool or kind not in _NUMBERS:
            shown = "" if value is None else f" {_show(value)}"  # a null is "got null", not "got null None"
            return f"must be a JSON {feature.type}, got {kind_of(value)}{shown}"
        if kind is int and not math.isfinite(_as_float(value)):
            return f"is far outside the valid range [{feature.min:g}, {feature.max:g}]"
        return None

    def _show_number(self, matrix: np.ndarray) -> Show:
        def show(i: int, j: int) -> str:
            value = float(matrix[i, j])
            return repr(int(value) if self.integral[j] and value.is_integer() else value)

        return show


def values_in_order(names: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A C-level getter of one instance's values in the order of `names` (a KeyError when one is missing)."""
    if len(names) == 1:  # itemgetter of one key returns the value, not a 1-tuple
        only = names[0]
        return lambda instance: (instance[only],)
    return operator.itemgetter(*names)


def outside_range(shown: str, feature: ManifestFeature) -> str:
    """The problem (range_policy=reject) or warning (flag) for a value outside the training range."""
    return f"{shown} is outside the range seen in training [{feature.min:g}, {feature.max:g}] {feature.unit}"


def kind_of(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def problems_message(count: int, details: Sequence[dict[str, Any]]) -> str:
    """`N problems in the request body: field: problem; ...`, the one message of every validation error."""
    return f"{count} problem{'s' if count > 1 else ''} in the request body: {summary(details[:5])}"


class _Missing:
    pass


_MISSING = _Missing()
_DICT = frozenset({dict})
_NUMBERS = frozenset({int, float})


def _locator(loc: Loc, many: bool) -> Callable[[int, str | None], Loc]:
    def locate(i: int, field: str | None) -> Loc:
        where = (*loc, i) if many else loc
        return where if field is None else (*where, field)

    return locate


def _cells(mask: np.ndarray, every: bool = False) -> list[tuple[int, int]]:
    """(instance, feature) of each True cell, in instance order; the first MAX_PROBLEMS unless `every`."""
    cells = np.argwhere(mask)
    return [(i, j) for i, j in (cells if every else cells[:MAX_PROBLEMS]).tolist()]


def _invalid(problems: list[_Problem], count: int) -> InvalidInput:
    problems.sort(key=lambda p: (p.instance, p.column))
    details = [detail(p.loc, p.text) for p in problems[:MAX_PROBLEMS]]
    return InvalidInput(problems_message(count, details), details)


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc[1:]) or "body"


def _as_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
