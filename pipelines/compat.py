"""Is a candidate model a drop-in replacement for the baseline, as seen by the clients of /predict?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Widening is safe (every request that was valid stays valid); narrowing is not.
_WIDER_TYPES = {("integer", "number")}


@dataclass(frozen=True)
class SchemaDiff:
    breaking: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        return not self.breaking


def _features(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in manifest.get("features", [])}


def _feature_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any], diff: SchemaDiff) -> None:
    if old.get("type") != new.get("type") and (old.get("type"), new.get("type")) not in _WIDER_TYPES:
        diff.breaking.append(f"feature {name}: type {old.get('type')} -> {new.get('type')}")
    if old.get("unit") != new.get("unit"):
        diff.breaking.append(f"feature {name}: unit {old.get('unit')} -> {new.get('unit')}")
    # Ranges are the training range plus a margin, so they move a little with every retrain; a
    # narrower range can turn a valid request into a 422, which is worth a look but not a block.
    if new.get("min", 0) > old.get("min", 0) or new.get("max", 0) < old.get("max", 0):
        diff.notes.append(
            f"feature {name}: accepted range [{old.get('min')}, {old.get('max')}] -> "
            f"[{new.get('min')}, {new.get('max')}] is narrower"
        )


def compare_schemas(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> SchemaDiff:
    """Breaking: a feature added or removed, a type narrowed, a unit changed, the task or classes changed."""
    diff = SchemaDiff()
    old, new = _features(baseline), _features(candidate)
    for name in sorted(new.keys() - old.keys()):
        diff.breaking.append(f"feature {name} added: existing clients do not send it")
    for name in sorted(old.keys() - new.keys()):
        diff.breaking.append(f"feature {name} removed: existing clients still send it")
    for name in sorted(old.keys() & new.keys()):
        _feature_changes(name, old[name], new[name], diff)
    if baseline.get("task") != candidate.get("task"):
        diff.breaking.append(f"task {baseline.get('task')} -> {candidate.get('task')}")
    if baseline.get("classes") != candidate.get("classes"):
        diff.breaking.append(f"classes {baseline.get('classes')} -> {candidate.get('classes')}")
    if baseline.get("target") != candidate.get("target"):
        diff.breaking.append(f"target {baseline.get('target')} -> {candidate.get('target')}")
    return diff
