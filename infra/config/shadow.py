"""The shadow: a challenger image whose artifact an initContainer copies into the pod (docs/shadow.md).

Keys (infra/contract.py): `shadow.sample` above 0 turns it on and needs `shadow.image.digestRef` (the challenger's
image by digest) and `shadow.modelVersion`; `shadow.artifactDir`, when the folder is on this machine, gives the
challenger's model.joblib digest for its allow-list. At 0 (the default) nothing is rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from infra import contract
from infra.config import read

_DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ShadowConfig:
    model_version: str
    artifact_dir: str
    digest_ref: str
    sample: float

    @property
    def enabled(self) -> bool:
        return self.sample > 0


def load(c: pulumi.Config) -> ShadowConfig:
    raw = read.string(c, contract.SHADOW_SAMPLE)
    try:
        sample = float(raw)
    except ValueError:
        raise read.StackConfigError(f"{contract.SHADOW_SAMPLE} must be a number from 0 to 1, got {raw!r}") from None
    return ShadowConfig(
        model_version=read.string(c, contract.SHADOW_MODEL_VERSION),
        artifact_dir=read.string(c, contract.SHADOW_ARTIFACT_DIR),
        digest_ref=read.string(c, contract.SHADOW_IMAGE_DIGEST_REF),
        sample=sample,
    )


def problems(shadow: ShadowConfig) -> list[str]:
    if not 0 <= shadow.sample <= 1:
        return [f"{contract.SHADOW_SAMPLE} is a fraction from 0 to 1, got {shadow.sample}"]
    if not shadow.enabled:
        return []
    found = []
    if not _DIGEST_REF.match(shadow.digest_ref):
        found.append(f"{contract.SHADOW_SAMPLE} > 0 needs {contract.SHADOW_IMAGE_DIGEST_REF}: the challenger's image "
                     f"as repo@sha256:<64 hex>, got {shadow.digest_ref!r}")  # fmt: skip
    if not read.LABEL_VALUE.match(shadow.model_version):
        found.append(f"{contract.SHADOW_SAMPLE} > 0 needs {contract.SHADOW_MODEL_VERSION} (the challenger's version)")
    return found
