"""ModelCanary: the canary's Deployment (its own replica count, no HPA), its settings ConfigMap and, under the
gateway-api router, a Service of its pods alone.

ModelService builds it when `canary.weight` is above 0, with the stable pod's template args changed only where
a canary differs: image, version and track labels, selector, and the ConfigMap (whose allow-list names the
canary's model.joblib; sharing the stable one would change its settings hash and roll the stable pods).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components import workload


@dataclass(frozen=True)
class CanarySpec:
    """What a stack's config says about its canary (ModelServiceArgs.canary)."""

    image_ref: pulumi.Input[str]
    model_version: str
    replicas: int  # already derived from the weight under the pods router
    artifact_sha256: str = ""  # the canary's model.joblib, from its manifest: its allow-list


@dataclass(frozen=True)
class ModelCanaryArgs:
    namespace: pulumi.Input[str]
    pod: workload.PodArgs  # the canary's pods: selector_labels is also the Deployment's selector
    labels: dict[str, str]  # metadata labels of the canary's objects
    replicas: int
    settings_data: dict[str, str]
    service_port: int = 0  # above 0: a Service selecting the canary pods only, for an HTTPRoute backend
    depends_on: Sequence[pulumi.Resource] = ()


class ModelCanary(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service | None

    def __init__(self, name: str, args: ModelCanaryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelship:index:ModelCanary", name, None, opts)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-settings",
            metadata=self._meta(args, args.pod.settings_config_map),
            data=args.settings_data,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=self._meta(args, name, annotations=workload.CHECKOV_SECRET_ENV_SKIP),
            spec=workload.deployment_spec(args.pod, args.replicas),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, config_map]),
        )
        self.service = self._service(name, args) if args.service_port else None
        self.register_outputs({})

    def _meta(
        self, args: ModelCanaryArgs, name: str, annotations: dict[str, str] | None = None
    ) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=args.namespace, labels=args.labels, annotations=annotations
        )

    def _service(self, name: str, args: ModelCanaryArgs) -> k8s.core.v1.Service:
        port = k8s.core.v1.ServicePortArgs(name="http", port=args.service_port, target_port="http", protocol="TCP")
        return k8s.core.v1.Service(
            f"{name}-service",
            metadata=self._meta(args, name),
            spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=args.pod.selector_labels, ports=[port]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
