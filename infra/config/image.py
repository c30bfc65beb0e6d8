"""The model image: the artifact it bakes in, where it is pushed, or the digest deployed without a build."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from infra import contract
from infra.config import read

SECRETS = ("image.registryPassword",)

_DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageConfig:
    model_version: str
    artifact_dir: str
    git_revision: str
    repository: str
    digest_ref: str
    platform: str
    registry_server: str
    registry_username: str
    registry_password: pulumi.Output[str]


def load(c: pulumi.Config) -> ImageConfig:
    version = read.string(c, contract.MODEL_VERSION)
    artifact_dir = read.string(c, contract.ARTIFACT_DIR)  # "" documents "derive it from the version"
    return ImageConfig(
        model_version=version,
        artifact_dir=artifact_dir if artifact_dir else f"artifacts/{version}",
        git_revision=read.string(c, "gitRevision"),
        repository=read.string(c, "image.repository"),
        digest_ref=read.string(c, contract.IMAGE_DIGEST_REF),
        platform=read.string(c, "image.platform"),
        registry_server=read.string(c, "image.registryServer"),
        registry_username=read.string(c, "image.registryUsername"),
        registry_password=read.secret(c, "image.registryPassword"),
    )


def secret_problems(c: pulumi.Config) -> list[str]:
    if read.string(c, "image.registryUsername") and not read.secret_text(c, "image.registryPassword"):
        return ["image.registryUsername is set but image.registryPassword is empty"]
    return []


def problems(image: ImageConfig) -> list[str]:
    found = []
    if not read.LABEL_VALUE.match(image.model_version):
        found.append(f"{contract.MODEL_VERSION} must be set to an artifact version such as house-price-3f9a0c1b2d4e")
    if image.digest_ref and not _DIGEST_REF.match(image.digest_ref):
        found.append(f"{contract.IMAGE_DIGEST_REF} must look like repo@sha256:<64 hex>, got {image.digest_ref!r}")
    if not image.digest_ref and not image.repository:
        found.append(f"image.repository is required to build an image (or set {contract.IMAGE_DIGEST_REF})")
    if image.repository and (":" in image.repository.rsplit("/", 1)[-1] or "@" in image.repository):
        found.append(f"image.repository takes no tag or digest; the tag is {contract.MODEL_VERSION}")
    return found
