"""The canary (`canary.*`): a second Deployment of another model next to the stable one, and how traffic is split.

A canary is declared state (infra/contract.py): `canary.weight` above 0 means the stack runs one. The split is
either by ready pods (router `pods`: the one Service selects both Deployments, so the canary's pod count is
derived from the weight) or exact (router `gateway-api`: an HTTPRoute weighs a stable and a canary Service).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pulumi

from infra import contract
from infra.config import read

PODS, GATEWAY_API = "pods", "gateway-api"
ROUTERS = (PODS, GATEWAY_API)
GATEWAY_KEY = "canary.gateway"  # read only by infra: the driver never sets it, so not part of infra/contract.py

_DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_GATEWAY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class CanaryConfig:
    model_version: str
    artifact_dir: str
    digest_ref: str
    weight: int  # percent, 0 = no canary
    replicas: int  # the gateway-api router's count; the pods router derives its own (pod_count)
    router: str
    gateway: str  # "name" or "namespace/name"

    @property
    def enabled(self) -> bool:
        return self.weight > 0


def load(c: pulumi.Config) -> CanaryConfig:
    return CanaryConfig(
        model_version=read.string(c, contract.CANARY_MODEL_VERSION),
        artifact_dir=read.string(c, contract.CANARY_ARTIFACT_DIR),
        digest_ref=read.string(c, contract.CANARY_IMAGE_DIGEST_REF),
        weight=read.integer(c, contract.CANARY_WEIGHT),
        replicas=read.integer(c, contract.CANARY_REPLICAS),
        router=read.string(c, contract.CANARY_ROUTER),
        gateway=read.string(c, "canary.gateway"),  # GATEWAY_KEY
    )


def pod_count(weight: int, stable_replicas: int) -> int:
    """Canary pods for WEIGHT percent next to STABLE_REPLICAS pods, when the split follows ready pods.

    The share is canary / (stable + canary), so it moves in steps of 1/(stable + canary): the count is the
    nearest whole number (halves round up) and never below 1. With 3 stable pods, 10% gives 1 canary pod, 25%
    of traffic; 10% exactly needs 9 stable pods. `effective_weight` says what a count really gives.
    """
    return max(1, math.floor(stable_replicas * weight / (100 - weight) + 0.5))


def effective_weight(canary_pods: int, stable_pods: int) -> float:
    """The percent of connections the canary gets when every pod is ready (kube-proxy picks pods evenly)."""
    return round(100 * canary_pods / (canary_pods + stable_pods), 1)


def problems(canary: CanaryConfig, stable_version: str, builds_images: bool) -> list[str]:
    """BUILDS_IMAGES: image.repository is set, so a canary without a digest can be built."""
    found = []
    if not 0 <= canary.weight <= 100:
        found.append(f"{contract.CANARY_WEIGHT} must be a percent within 0..100, got {canary.weight}")
    if canary.replicas < 1:
        found.append(f"{contract.CANARY_REPLICAS} must be at least 1")
    if canary.router not in ROUTERS:
        found.append(f"{contract.CANARY_ROUTER} must be pods or gateway-api, got {canary.router!r}")
    if canary.router == GATEWAY_API and not _GATEWAY.match(canary.gateway):
        found.append(f"{contract.CANARY_ROUTER} gateway-api needs {GATEWAY_KEY}: the Gateway's name or namespace/name")
    if canary.router == PODS and canary.weight == 100:
        found.append(
            f"{contract.CANARY_WEIGHT} 100 with router pods would need infinitely many canary pods: promote instead"
        )
    return found + (_version_problems(canary, stable_version, builds_images) if canary.enabled else [])


def _version_problems(canary: CanaryConfig, stable_version: str, builds_images: bool) -> list[str]:
    found = []
    version = canary.model_version
    if not read.LABEL_VALUE.match(version):
        found.append(f"{contract.CANARY_WEIGHT} is above 0: set {contract.CANARY_MODEL_VERSION} to an artifact version")
    elif version == stable_version:
        found.append(f"{contract.CANARY_MODEL_VERSION} is the stable {contract.MODEL_VERSION}: a canary needs another")
    if canary.digest_ref and not _DIGEST_REF.match(canary.digest_ref):
        ref = canary.digest_ref
        found.append(f"{contract.CANARY_IMAGE_DIGEST_REF} must look like repo@sha256:<64 hex>, got {ref!r}")
    if not canary.digest_ref and not canary.artifact_dir:
        found.append(
            f"{contract.CANARY_WEIGHT} is above 0: "
            f"set {contract.CANARY_ARTIFACT_DIR} or {contract.CANARY_IMAGE_DIGEST_REF}"
        )
    if not canary.digest_ref and not builds_images:
        found.append(f"image.repository is required to build the canary (or set {contract.CANARY_IMAGE_DIGEST_REF})")
    return found
