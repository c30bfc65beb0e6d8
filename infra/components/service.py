"""ModelService: the namespace, settings, Deployment, Service, HPA, PDB, NetworkPolicies and the
prediction-log retention CronJob of one stack.

The Database lives inside it because both need the namespace first and the service needs the database URL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components import specs, workload
from infra.components.database import Database, DatabaseArgs
from infra.components.gpu import GpuScheduling
from infra.config import (
    SHUTDOWN_GRACE_S,
    AutoscalingConfig,
    DatabaseConfig,
    RetentionConfig,
    ServiceConfig,
    ShadowConfig,
)
from infra.config.settings_bridge import default, env_var

ALLOWED_DIGESTS = env_var("allowed_artifact_sha256")


@dataclass(frozen=True)
class ModelServiceArgs:
    image_ref: pulumi.Input[str]
    model_version: str
    settings: ServiceConfig
    autoscaling: AutoscalingConfig
    database: DatabaseConfig
    retention: RetentionConfig
    gpu: GpuScheduling | None = None
    gpu_pool: pulumi.Resource | None = None  # the Deployment waits for it: GPU pods would sit Pending
    protect: bool = False  # Pulumi-protect the Namespace and the database's Cluster (the `protect` setting)
    artifact_sha256: str = ""  # the served model.joblib, from its manifest: the allow-list unless one is set
    shadow: ShadowConfig | None = None  # a challenger beside the model (docs/shadow.md), rendered when sample > 0
    shadow_sha256: str = ""  # the challenger's model.joblib, from its manifest when the folder is here


class ModelService(pulumi.ComponentResource):
    """Outputs the in-cluster `url`, the `external_address`, the `namespace`, the `database`, and the
    `retention` CronJob (None when retention.enabled is false)."""

    url: pulumi.Output[str]
    external_address: pulumi.Output[str]
    namespace: pulumi.Output[str]
    database: Database
    retention: k8s.batch.v1.CronJob | None

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelship:index:ModelService", name, None, opts)
        s = args.settings
        self._name, self._args = name, args
        self.selector = {"app.kubernetes.io/name": "modelship", "app.kubernetes.io/instance": name}
        self.labels = {
            **self.selector,
            "app.kubernetes.io/part-of": "modelship",
            "app.kubernetes.io/managed-by": "pulumi",
        }
        # Not the service's name label: the Service, PDB, HPA and spread constraints select pods by
        # self.selector, and a job pod among them would get traffic it cannot answer. The Deployment's
        # selector is immutable, so rather than give the service pods a component label to tell them
        # apart, the job's pods get a name label of their own.
        self.retention_selector = {"app.kubernetes.io/name": "modelship-retention", "app.kubernetes.io/instance": name}
        self._ns_deps: list[pulumi.Resource] = []
        self.namespace = self._namespace()
        self.database = Database(
            f"{name}-db",
            DatabaseArgs(namespace=self.namespace, settings=args.database, protect=args.protect),
            self._opts(),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=self._meta(name), automount_service_account_token=False, opts=self._opts()
        )
        settings_data = self._settings_data()
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-settings", metadata=self._meta(f"{name}-settings"), data=settings_data, opts=self._opts()
        )
        database_url: pulumi.Output[str] = pulumi.Output.secret(self.database.url)
        secret = k8s.core.v1.Secret(
            f"{name}-settings-secret",
            metadata=self._meta(f"{name}-settings"),
            string_data={workload.DATABASE_URL_KEY: database_url},
            opts=self._opts(),
        )
        api_keys = self._api_keys_secret(s) if s.auth_required else None
        pod = workload.PodArgs(
            image_ref=args.image_ref,
            selector_labels=self.selector,
            labels={**self.labels, "app.kubernetes.io/version": args.model_version},
            service_account=name,
            settings_config_map=f"{name}-settings",
            settings_secret=f"{name}-settings",
            api_keys_secret=f"{name}-api-keys" if api_keys else None,
            config_hash=hashlib.sha256(json.dumps(settings_data, sort_keys=True).encode()).hexdigest()[:16],
            settings=s,
            gpu=args.gpu,
            shadow_image=args.shadow.digest_ref if args.shadow and args.shadow.enabled else None,
        )
        ready: list[pulumi.Resource] = [account, config_map, secret, *([api_keys] if api_keys else [])]
        self.deployment = self._deployment(pod, ready)
        self.service = self._service()
        self.retention = self._retention(f"{name}-settings", [account, secret, self.deployment])
        if args.autoscaling.enabled:
            self._hpa()
        if s.pdb_min_available > 0:
            self._pdb()
        self._network_policies()
        self.url = pulumi.Output.concat("http://", name, ".", self.namespace, f".svc.cluster.local:{s.service_port}")
        self.external_address = self.service.status.apply(_load_balancer_address)
        self.register_outputs({"url": self.url, "externalAddress": self.external_address})

    # --- pieces --------------------------------------------------------------------------------
    def _namespace(self) -> pulumi.Output[str]:
        s = self._args.settings
        if not s.create_namespace:
            return pulumi.Output.from_input(s.namespace)
        ns = k8s.core.v1.Namespace(
            f"{self._name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=s.namespace,
                labels={**self.labels, "pod-security.kubernetes.io/enforce": "restricted"},
            ),
            # Deleting the Namespace deletes everything in it, the database's volumes included.
            opts=pulumi.ResourceOptions(parent=self, protect=self._args.protect),
        )
        self._ns_deps.append(ns)
        # Derived from the resource, so everything placed in the namespace waits for it.
        return ns.metadata.apply(lambda m: s.namespace if m.name is None else m.name)

    def _meta(self, name: str, annotations: dict[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=self.namespace, labels=self.labels, annotations=annotations
        )

    def _opts(self, *after: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[*self._ns_deps, *after])

    def _settings_data(self) -> dict[str, str]:
        s = self._args.settings
        # The settings a stack may set (service/settings.py marks them), then the ones the pod's shape fixes.
        data = {
            **s.settings_env,
            env_var("model_dir"): default("model_dir"),  # where the Dockerfile copies the artifact
            env_var("spool_dir"): workload.SPOOL_DIR,
            env_var("shutdown_grace_s"): str(SHUTDOWN_GRACE_S),
        }
        # An explicit allow-list wins; otherwise only the artifact this stack serves may be unpickled, so an
        # image whose model.joblib and manifest were swapped together does not serve.
        allowed = data.pop(ALLOWED_DIGESTS, "") or self._args.artifact_sha256
        if allowed:
            data[ALLOWED_DIGESTS] = allowed
        if s.auth_required:
            data[env_var("api_keys_file")] = workload.API_KEYS_FILE
        return data | self._shadow_settings()

    def _shadow_settings(self) -> dict[str, str]:
        shadow = self._args.shadow
        if shadow is None or not shadow.enabled:
            return {}
        data = {env_var("shadow_model_dir"): workload.SHADOW_MODEL_DIR, env_var("shadow_sample"): str(shadow.sample)}
        if self._args.shadow_sha256:
            data[env_var("shadow_allowed_artifact_sha256")] = self._args.shadow_sha256
        return data

    def _api_keys_secret(self, config: ServiceConfig) -> k8s.core.v1.Secret:
        keys: pulumi.Output[str] = pulumi.Output.secret(config.api_keys)  # infra.config checked it is set
        return k8s.core.v1.Secret(
            f"{self._name}-api-keys",
            metadata=self._meta(f"{self._name}-api-keys"),
            string_data={"keys": keys},
            opts=self._opts(),
        )

    def _deployment(self, pod: workload.PodArgs, ready: list[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        hpa_owns_replicas = self._args.autoscaling.enabled
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=self._meta(self._name, annotations=workload.CHECKOV_SECRET_ENV_SKIP),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=self._args.settings.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                min_ready_seconds=5,
                revision_history_limit=5,
                progress_deadline_seconds=600,
                template=workload.pod_template(pod),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self._ns_deps, *ready, *([self._args.gpu_pool] if self._args.gpu_pool else [])],
                # Once the HPA owns the replica count, a `pulumi up` must not reset it.
                ignore_changes=["spec.replicas"] if hpa_owns_replicas else None,
            ),
        )

    def _retention(self, secret: str, ready: list[pulumi.Resource]) -> k8s.batch.v1.CronJob | None:
        r = self._args.retention
        if not r.enabled:
            return None
        labels = {
            **self.retention_selector,
            "app.kubernetes.io/component": "retention",
            "app.kubernetes.io/part-of": "modelship",
            "app.kubernetes.io/managed-by": "pulumi",
            "app.kubernetes.io/version": self._args.model_version,
        }
        pod = workload.JobPodArgs(
            image_ref=self._args.image_ref,
            labels=labels,
            service_account=self._name,
            database_url_secret=secret,
            command=specs.retention_command(r),
        )
        name = f"{self._name}-retention"
        return k8s.batch.v1.CronJob(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name, namespace=self.namespace, labels=labels, annotations=workload.CHECKOV_SECRET_ENV_SKIP
            ),
            spec=specs.retention_cronjob_spec(r, workload.job_pod_template(pod)),
            # After the Deployment: its pods create the predictions table on start, and a new image is
            # rolled out (and healthy) before the job runs it.
            opts=self._opts(*ready),
        )

    def _service(self) -> k8s.core.v1.Service:
        s = self._args.settings
        return k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=self._meta(self._name),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=s.service_type,
                selector=self.selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(name="http", port=s.service_port, target_port="http", protocol="TCP")
                ],
            ),
            opts=self._opts(),
        )

    def _hpa(self) -> None:
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-hpa",
            metadata=self._meta(self._name),
            spec=specs.hpa_spec(self._name, self._args.autoscaling),
            opts=self._opts(self.deployment),
        )

    def _pdb(self) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb",
            metadata=self._meta(self._name),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=self._args.settings.pdb_min_available,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector),
            ),
            opts=self._opts(),
        )

    def _network_policies(self) -> None:
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-ingress",
            metadata=self._meta(f"{self._name}-ingress"),
            spec=specs.service_ingress(self.selector),
            opts=self._opts(),
        )
        db = self.database
        if db.pod_labels is None or db.operator_namespace is None:
            return  # external database: nothing of it runs in this namespace
        clients = [self.selector, *([self.retention_selector] if self.retention else [])]
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-db-ingress",
            metadata=self._meta(f"{self._name}-db-ingress"),
            spec=specs.database_ingress(clients, db.pod_labels, db.operator_namespace),
            opts=self._opts(),
        )


def _load_balancer_address(status: Any) -> str:
    """The load balancer's IP or host name once the cloud assigned one; "" for ClusterIP."""
    ingress = status.load_balancer.ingress if status is not None and status.load_balancer is not None else None
    if not ingress:
        return ""
    first = ingress[0]
    return first.ip if first.ip else (first.hostname if first.hostname else "")
