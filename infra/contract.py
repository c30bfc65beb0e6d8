"""The names infra/ and pipelines/ share: the config keys the pipelines set and the outputs they read.

One owner for each name (STYLE.md, "Contracts across seams"): Pulumi.yaml declares these keys, infra/config/
reads them, pipelines/targets/base.py imports them from here, and tests/rehearsal/test_contract.py checks all
three against each other. No Pulumi import here, so the pipelines' local target does not need the SDK.

Keys are set flat (`pulumi config set image.digestRef X`, `set_all_config(path=False)`), never with `--path`:
infra/config/ reads a flat value first and a path-nested one second, see `infra.config.read.raw`.
"""

from __future__ import annotations

PROJECT = "modelship"

# --- config keys the pipelines set (short names, as declared in Pulumi.yaml) -------------------------
MODEL_VERSION = "modelVersion"
ARTIFACT_DIR = "artifactDir"  # relative to the repo root (the image's build context)
IMAGE_DIGEST_REF = "image.digestRef"  # set: infra deploys this digest and builds nothing
API_KEYS = "auth.apiKeys"  # secret; the deploy job sets it from the environment's secret before `up`
AUTH_REQUIRED = "auth.required"
PROTECT = "protect"  # "true": infra Pulumi-protects the Namespace and the Postgres Cluster; destroy checks it

# A canary is declared state, like the stable version: a stack whose `canary.weight` is above 0 runs one, so a
# driver that dies leaves a canary the next `canary`, `promote`, `rollback` or `status` finds in the config.
CANARY_MODEL_VERSION = "canary.modelVersion"
CANARY_ARTIFACT_DIR = "canary.artifactDir"
CANARY_IMAGE_DIGEST_REF = "canary.image.digestRef"
CANARY_WEIGHT = "canary.weight"  # percent of traffic, 0-100; 0 (the default) means no canary
CANARY_REPLICAS = "canary.replicas"
CANARY_ROUTER = "canary.router"  # "pods" (the default: the split follows ready pods) or "gateway-api"
CANARY_KEYS = (CANARY_MODEL_VERSION, CANARY_ARTIFACT_DIR, CANARY_IMAGE_DIGEST_REF, CANARY_WEIGHT)
# A shadow (challenger) scores a sampled copy of live traffic; its answers never reach a client.
SHADOW_MODEL_VERSION = "shadow.modelVersion"
SHADOW_ARTIFACT_DIR = "shadow.artifactDir"
SHADOW_IMAGE_DIGEST_REF = "shadow.image.digestRef"
SHADOW_SAMPLE = "shadow.sample"  # fraction of live requests copied, 0-1; 0 (the default) means no shadow
SHADOW_KEYS = (SHADOW_MODEL_VERSION, SHADOW_ARTIFACT_DIR, SHADOW_IMAGE_DIGEST_REF, SHADOW_SAMPLE)

# --- stack outputs the pipelines read (infra/__main__.py exports them) -------------------------------
OUTPUT_URL = "serviceUrl"
OUTPUT_MODEL_VERSION = "modelVersion"
OUTPUT_IMAGE_REF = "imageRef"
OUTPUT_EXTERNAL_ADDRESS = "externalAddress"
OUTPUT_NAMESPACE = "namespace"
# exported only while a canary runs (canary.weight above 0); the weight is the effective percent, which the
# pods router rounds to whole pods (infra/config/canary.py, pod_count)
OUTPUT_CANARY_MODEL_VERSION = "canaryModelVersion"
OUTPUT_CANARY_IMAGE_REF = "canaryImageRef"
OUTPUT_CANARY_WEIGHT = "canaryWeight"
# exported for people and tests, not read by the pipelines
OUTPUT_DATABASE_HOST = "databaseHost"
OUTPUT_DATABASE_URL = "databaseUrl"  # secret

# The CrossGuard pack every `up` and `preview` runs (pipelines pass it; the workflows pass it too).
POLICY_PACK_DIR = "infra/policies"


def full_key(key: str) -> str:
    """`modelship:<key>`, the form Pulumi config and update histories use."""
    return key if ":" in key else f"{PROJECT}:{key}"
