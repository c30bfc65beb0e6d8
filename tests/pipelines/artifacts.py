"""Artifacts built for tests: a deliberately broken candidate that loads fine but answers nonsense."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib

from model.artifact import sha256_file


def make_broken_artifact(source: Path, out_dir: Path) -> Path:
    """A copy of SOURCE whose regressor predicts NaN.

    It passes verification (its sha256 matches its manifest), the service loads it and /ready turns
    200, and its manifest metrics are the source's, so the gate lets it through: only the smoke test,
    which looks at actual answers, can catch it. That is the failure mode release must undo.
    """
    manifest = json.loads((source / "manifest.json").read_text())
    version = f"{manifest['name']}-badbadbadbad"
    target = out_dir / version
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    estimator = joblib.load(source / "model.joblib")
    estimator.steps[-1][1].intercept_ = float("nan")
    joblib.dump(estimator, target / "model.joblib")
    manifest["version"] = version
    manifest["artifact"]["sha256"] = sha256_file(target / "model.joblib")
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def relabel_artifact(source: Path, out_dir: Path, suffix: str) -> Path:
    """A copy of SOURCE under another version: the very same model, so a canary of it must pass."""
    manifest = json.loads((source / "manifest.json").read_text())
    version = f"{manifest['version']}-{suffix}"
    target = out_dir / version
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    manifest["version"] = version
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return target
