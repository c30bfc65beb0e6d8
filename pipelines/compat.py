"""Is a candidate model a drop-in replacement for the baseline, as seen by the clients of /predict?"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.manifest import Manifest, ManifestFeature

# Widening is safe (every request that was valid stays valid); narrowing is not.
_WIDER_TYPES = {("integer", "number")}


@dataclass(frozen=True)
class SchemaDiff:
    breaking: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        return not self.breaking


def _features(manifest: Manifest) -> dict[str, ManifestFeature]:
    return {feature.name: feature for feature in manifest.features}


def _feature_changes(name: str, old: ManifestFeature, new: ManifestFeature, diff: SchemaDiff) -> None:
    if old.type != new.type and (old.type, new.type) not in _WIDER_TYPES:
        diff.breaking.append(f"feature {name}: type {old.type} -> {new.type}")
    if old.unit != new.unit:
        diff.breaking.append(f"feature {name}: unit {old.unit} -> {new.unit}")
    # Ranges are the training range plus a margin, so they move a little with every retrain; a
    # narrower range can turn a valid request into a 422, which is worth a look but not a block.
    if new.min > old.min or new.max < old.max:
        diff.notes.append(
            f"feature {name}: accepted range [{old.min}, {old.max}] -> [{new.min}, {new.max}] is narrower"
        )


def compare_schemas(baseline: Manifest, candidate: Manifest) -> SchemaDiff:
    """Breaking: a feature added or removed, a type narrowed, a unit changed, the task or classes changed."""
    diff = SchemaDiff()
    old, new = _features(baseline), _features(candidate)
    for name in sorted(new.keys() - old.keys()):
        diff.breaking.append(f"feature {name} added: existing clients do not send it")
    for name in sorted(old.keys() - new.keys()):
        diff.breaking.append(f"feature {name} removed: existing clients still send it")
    for name in sorted(old.keys() & new.keys()):
        _feature_changes(name, old[name], new[name], diff)
    if baseline.task != candidate.task:
        diff.breaking.append(f"task {baseline.task} -> {candidate.task}")
    if baseline.classes != candidate.classes:
        diff.breaking.append(f"classes {_shown(baseline.classes)} -> {_shown(candidate.classes)}")
    if baseline.target != candidate.target:
        diff.breaking.append(f"target {baseline.target.model_dump()} -> {candidate.target.model_dump()}")
    return diff


def _shown(classes: tuple[str, ...] | None) -> list[str] | None:
    # As the manifest writes them (a JSON list), so the note reads the same as the file.
    return list(classes) if classes is not None else None
