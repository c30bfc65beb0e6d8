"""The modelship stack: read the config once, wire the components, export what pipelines need."""

import sys
from pathlib import Path

# Pulumi runs this folder as a script (sys.path[0] is infra/); make the `infra` package importable
# even when the virtualenv does not hold an editable install of the repo.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)

import pulumi  # noqa: E402

from infra import config, contract  # noqa: E402
from infra.components import (  # noqa: E402
    GpuNodePool,
    ModelImage,
    ModelImageArgs,
    ModelService,
    ModelServiceArgs,
)
from infra.components.canary import CanarySpec  # noqa: E402
from infra.components.image import artifact_sha256  # noqa: E402
from infra.components.monitoring import Monitoring, MonitoringArgs  # noqa: E402
from infra.config import canary as canary_config  # noqa: E402

cfg = config.load(pulumi.Config(), pulumi.get_stack())

gpu_pool = None
if cfg.gpu.enabled:
    gpu_pool = GpuNodePool("modelship-gpu", cfg.gpu.pool)

i = cfg.image
image = ModelImage(
    "modelship-image",
    ModelImageArgs(
        repository=i.repository,
        model_version=i.model_version,
        artifact_dir=i.artifact_dir,
        git_revision=i.git_revision,
        platform=i.platform,
        registry_server=i.registry_server,
        registry_username=i.registry_username,
        registry_password=i.registry_password,
        digest_ref=i.digest_ref,
        base_image=cfg.gpu.base_image if gpu_pool else "",
    ),
)

c = cfg.canary
canary = None
if c is not None and c.enabled:
    # The stable image's build path, with the canary's artifact or digest (infra/components/image.py).
    canary_artifact = c.artifact_dir if c.artifact_dir else f"artifacts/{c.model_version}"
    canary_image = ModelImage(
        "modelship-canary-image",
        ModelImageArgs(
            repository=i.repository,
            model_version=c.model_version,
            artifact_dir=canary_artifact,
            git_revision=i.git_revision,
            platform=i.platform,
            registry_server=i.registry_server,
            registry_username=i.registry_username,
            registry_password=i.registry_password,
            digest_ref=c.digest_ref,
            base_image=cfg.gpu.base_image if gpu_pool else "",
        ),
    )
    pods = c.router == canary_config.PODS
    canary = CanarySpec(
        image_ref=canary_image.ref,
        model_version=c.model_version,
        replicas=canary_config.pod_count(c.weight, cfg.service.replicas) if pods else c.replicas,
        artifact_sha256=artifact_sha256(canary_artifact),
    )

SERVICE = "modelship"  # the ModelService, and so its Deployment and HorizontalPodAutoscaler
service = ModelService(
    SERVICE,
    ModelServiceArgs(
        image_ref=image.ref,
        model_version=i.model_version,
        settings=cfg.service,
        autoscaling=cfg.autoscaling,
        database=cfg.database,
        retention=cfg.retention,
        gpu=gpu_pool.scheduling if gpu_pool else None,
        gpu_pool=gpu_pool,
        protect=cfg.protect,
        artifact_sha256=artifact_sha256(i.artifact_dir),
        canary=canary,
        canary_weight=c.weight if c else 0,
        router=c.router if c else canary_config.PODS,
        gateway=c.gateway if c else "",
        shadow=cfg.shadow,
        shadow_sha256=artifact_sha256(cfg.shadow.artifact_dir) if cfg.shadow and cfg.shadow.artifact_dir else "",
    ),
)

if cfg.monitoring and cfg.monitoring.enabled:
    hpa = cfg.autoscaling
    Monitoring(
        "modelship-monitoring",
        MonitoringArgs(
            namespace=service.namespace,
            pod_selector=service.selector,
            labels=service.labels,
            settings=cfg.monitoring,
            spool_max_bytes=cfg.service.spool_max_bytes,
            hpa_name=SERVICE,
            rps_metric=hpa.rps_metric if hpa.enabled and hpa.rps_per_pod > 0 else "",
        ),
    )

pulumi.export(contract.OUTPUT_URL, service.url)
pulumi.export(contract.OUTPUT_EXTERNAL_ADDRESS, service.external_address)
pulumi.export(contract.OUTPUT_IMAGE_REF, image.ref)
pulumi.export(contract.OUTPUT_MODEL_VERSION, i.model_version)
pulumi.export(contract.OUTPUT_DATABASE_HOST, service.database.host)
pulumi.export(contract.OUTPUT_DATABASE_URL, pulumi.Output.secret(service.database.url))
pulumi.export(contract.OUTPUT_NAMESPACE, service.namespace)
if c is not None and canary is not None:
    pulumi.export(contract.OUTPUT_CANARY_MODEL_VERSION, c.model_version)
    pulumi.export(contract.OUTPUT_CANARY_IMAGE_REF, canary.image_ref)
    # What the split is when every pod is ready: the pods router rounds the weight to whole pods.
    pods = c.router == canary_config.PODS
    share = canary_config.effective_weight(canary.replicas, cfg.service.replicas) if pods else float(c.weight)
    pulumi.export(contract.OUTPUT_CANARY_WEIGHT, share)
