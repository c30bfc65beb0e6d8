"""Vectorized checks of a batch held as one float64 matrix in the manifest's feature order.

The same rules as `InstanceValidator` (finite, integral where the schema says integer, inside the
training range under the range policy), applied per column with numpy instead of per value in
Python. Problems still name the instance and the field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np

from model.manifest import ManifestFeature
from service.errors import InvalidInput, detail, summary
from service.validation import Checked, InstanceValidator, outside_range

MAX_PROBLEMS = 20  # the body names this many; the message gives the total
Locate = Callable[[int, str], tuple[Any, ...]]


def check_instances(validator: InstanceValidator, instances: list[Any], loc: tuple[Any, ...]) -> Checked:
    """`validator.check` for a batch of JSON objects, column-wise when the batch is clean.

    A batch whose objects hold exactly the features, as JSON numbers that pass every check, is
    answered from one matrix. Anything else (a problem, or a range warning) goes through the
    validator itself, so messages and warnings are exactly those of the value-by-value path.
    """
    matrix = _matrix_of(validator, instances)
    if matrix is not None:
        with contextlib.suppress(InvalidInput):
            if not check_matrix(validator, matrix, lambda i, field: (*loc, i, field)):
                return Checked(matrix, [])
    return validator.check(instances, loc)


def _matrix_of(validator: InstanceValidator, instances: list[Any]) -> np.ndarray | None:
    # map() over C callables: no Python frame per instance or per value. An object holds exactly the
    # features when it has as many keys and each feature is among them (the getter raises otherwise).
    width = len(validator.names)
    if set(map(type, instances)) != _DICT or set(map(len, instances)) != {width}:
        return None
    try:
        values = list(chain.from_iterable(map(validator.row_of, instances)))
    except KeyError:
        return None
    if not set(map(type, values)) <= _NUMBERS:  # bool is not int here: True must not pass as 1
        return None
    try:
        return np.array(values, dtype=np.float64).reshape(len(instances), width)
    except OverflowError:
        return None


_DICT = frozenset({dict})
_NUMBERS = frozenset({int, float})


def check_matrix(validator: InstanceValidator, matrix: np.ndarray, locate: Locate) -> list[str]:
    """Raise InvalidInput naming each bad (instance, field) of `matrix`; return the range warnings."""
    finite = np.isfinite(matrix)
    if finite.all() and not _any_integer_or_range_problem(validator, matrix):
        return []  # the common case, in a few whole-matrix operations
    problems: list[tuple[int, int, str]] = []
    warnings: list[tuple[int, int, str]] = []
    for i, j in np.argwhere(~finite)[:MAX_PROBLEMS].tolist():
        problems.append((i, j, f"must be a finite number, got {float(matrix[i, j])}"))
    for j, feature in enumerate(validator.features):
        _check_column(feature, matrix[:, j], finite[:, j], j, problems, warnings, validator.reject_out_of_range)
    if problems:
        problems.sort()
        raise _invalid(validator, problems, locate)
    return [f"{_field(locate(i, validator.names[j]))}: {text}" for i, j, text in sorted(warnings)]


def _any_integer_or_range_problem(validator: InstanceValidator, matrix: np.ndarray) -> bool:
    if ((matrix < validator.mins) | (matrix > validator.maxs)).any():
        return True
    integral = matrix[:, validator.integral]
    return bool(integral.size and (integral != np.floor(integral)).any())


def _check_column(
    feature: ManifestFeature,
    column: np.ndarray,
    finite: np.ndarray,
    column_index: int,
    problems: list[tuple[int, int, str]],
    warnings: list[tuple[int, int, str]],
    reject: bool,
) -> None:
    if feature.type == "integer":
        for i in np.flatnonzero(finite & (column != np.floor(column)))[:MAX_PROBLEMS].tolist():
            problems.append((i, column_index, f"must be an integer, got {float(column[i])!r}"))
    outside = np.flatnonzero(finite & ((column < feature.min) | (column > feature.max)))
    if not len(outside):
        return
    found = problems if reject else warnings
    for i in outside[: MAX_PROBLEMS if reject else len(outside)].tolist():
        value = column[i]
        shown = int(value) if feature.type == "integer" and value.is_integer() else float(value)
        found.append((i, column_index, outside_range(repr(shown), feature)))


def _invalid(validator: InstanceValidator, problems: list[tuple[int, int, str]], locate: Locate) -> InvalidInput:
    details = []
    for i, j, text in problems[:MAX_PROBLEMS]:
        loc = locate(i, validator.names[j])
        details.append(detail(loc, text))
    count = len(problems)
    shown = summary(details[:5])
    return InvalidInput(f"{count}{'+' if count >= MAX_PROBLEMS else ''} problem{'s' if count > 1 else ''} "
                        f"in the request body: {shown}", details)  # fmt: skip


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc[1:]) or "body"
