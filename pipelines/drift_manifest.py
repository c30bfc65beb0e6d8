"""Which manifest a drift report reads: the one the model version was trained with.

The artifact folder first (`--artifact DIR`, else `<artifacts_dir>/<version>/`): it holds the manifest of any
version, the one serving now or an earlier one whose rows are still in the log, and needs no running service.
A version is a content hash, so the folder named after it is that model. Without the folder on this machine
(a Pulumi stack deployed from CI), the stack's GET /model answers, but only for the version it serves now.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.artifact import ArtifactError, load_manifest
from model.manifest import Manifest
from pipelines import commands
from pipelines.baseline import stack_baseline
from pipelines.errors import ConfigError, StageError
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target


def find_manifest(version: str, args: argparse.Namespace, settings: PipelineSettings) -> Manifest:
    """VERSION's manifest from `--artifact`, the artifacts folder, or `--stack`'s /model; ConfigError if none."""
    if args.artifact is not None:
        return _checked(_load(Path(args.artifact)), version, f"--artifact {args.artifact}")
    folder = Path(settings.artifacts_dir) / version
    if (folder / "manifest.json").is_file():
        return _checked(_load(folder), version, str(folder))
    if args.stack:
        try:
            found = stack_baseline(get_target(args.target, settings), args.stack, settings.http_timeout_s,
                                   commands.api_key(settings))  # fmt: skip
        except StageError as exc:
            raise ConfigError(f"no manifest for {version} in {folder}/ and {exc}; pass --artifact DIR") from exc
        if found is not None and found.manifest.version == version:
            return found.manifest
    raise ConfigError(f"no manifest for {version}: {folder}/manifest.json does not exist; pass --artifact DIR")


def _load(folder: Path) -> Manifest:
    try:
        return load_manifest(folder)
    except ArtifactError as exc:
        raise ConfigError(str(exc)) from exc


def _checked(manifest: Manifest, version: str, where: str) -> Manifest:
    if manifest.version != version:
        raise ConfigError(f"{where} holds {manifest.version}, not {version}; pass that version's artifact")
    return manifest
