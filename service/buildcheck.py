"""`python -m service.buildcheck`: the Dockerfile's build-time smoke step.

A wrong image should fail `docker build`, not its first start: a base without CPython 3.11 in /usr/local
(the venv's interpreter is a symlink there), a service that does not import, an artifact that fails its
checks, or build args that would put labels on the image contradicting the model it serves.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from model.artifact import ArtifactError, verify_artifact

REQUIRED_ARGS = ("MODEL_VERSION", "MODEL_SHA256", "GIT_REVISION", "CREATED")


def problems(env: dict[str, str], model_dir: Path) -> list[str]:
    """Everything wrong with this image, as lines for the build log; empty when it may ship."""
    found = []
    if sys.version_info[:2] != (3, 11) or sys.base_prefix != "/usr/local":
        found.append(f"the interpreter is Python {sys.version.split()[0]} in {sys.base_prefix}: BASE_IMAGE must "
                     "ship CPython 3.11 in /usr/local like python:3.11-slim-bookworm")  # fmt: skip
    found += [f"build arg {name} is empty: `make image` passes it" for name in REQUIRED_ARGS if not env.get(name)]
    try:
        manifest = verify_artifact(model_dir)
    except ArtifactError as exc:
        return [*found, f"the artifact in {model_dir} fails its checks: {exc}"]
    for arg, actual in (("MODEL_VERSION", manifest.version), ("MODEL_SHA256", manifest.artifact.sha256)):
        if env.get(arg) and env[arg] != actual:
            found.append(f"build arg {arg}={env[arg]} contradicts the manifest in {model_dir} ({actual})")
    return found


def main() -> int:
    import service.app  # noqa: F401 - the import is the check: every runtime dependency is there

    found = problems(dict(os.environ), Path(os.environ.get("MODELSHIP_MODEL_DIR", "/app/model")))
    for line in found:
        print(f"buildcheck: {line}", file=sys.stderr)
    if not found:
        print(f"buildcheck: ok (Python {sys.version.split()[0]} in {sys.base_prefix})", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
