"""ModelService: the namespace, settings, Deployment, Service, HPA, PDB, NetworkPolicies, the
prediction-log retention CronJob of one stack, and its canary and HTTPRoute when the config has them.

The Database lives inside it because both need the namespace first and the service needs the database URL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components import routing, specs, workload
from infra.components.canary import CanarySpec, ModelCanary, ModelCanaryArgs
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
from infra.config.canary import GATEWAY_API, PODS
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
    canary: CanarySpec | None = None  # canary.weight above 0: a second Deployment (infra/components/canary.py)
    canary_weight: int = 0  # percent; the gateway-api router's weights (the pods router made it replicas)
    router: str = PODS  # canary.router: pods, or gateway-api (an HTTPRoute on `gateway`)
    gateway: str = ""
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
        settings_data = self._settings_data(args.artifact_sha256)
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
            labels={**self.labels, "app.kubernetes.io/version": args.model_version, routing.TRACK: routing.STABLE},
            service_account=name,
            settings_config_map=f"{name}-settings",
            settings_secret=f"{name}-settings",
            api_keys_secret=f"{name}-api-keys" if api_keys else None,
            config_hash=_settings_hash(settings_data),
            settings=s,
            gpu=args.gpu,
            shadow_image=args.shadow.digest_ref if args.shadow and args.shadow.enabled else None,
        )
        ready: list[pulumi.Resource] = [account, config_map, secret, *([api_keys] if api_keys else [])]
        self.deployment = self._deployment(pod, ready)
        self.service = self._service()
        self.canary = self._canary(pod, ready) if args.canary else None
        self.route = self._http_route() if args.router == GATEWAY_API else None
        self.retention = self._retention(f"{name}-settings", [account, secret, self.deployment])
        self.hpa = self._hpa() if args.autoscaling.enabled else None
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

    def _settings_data(self, artifact_sha256: str) -> dict[str, str]:
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
        allowed = data.pop(ALLOWED_DIGESTS, "") or artifact_sha256
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
            spec=workload.deployment_spec(pod, self._args.settings.replicas),
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

    def _canary(self, stable: workload.PodArgs, ready: list[pulumi.Resource]) -> ModelCanary:
        """The stable pod with the canary's image, version, track and settings (their own allow-list)."""
        spec = self._args.canary
        assert spec is not None
        name = f"{self._name}-canary"
        selector = {**self.selector, routing.TRACK: routing.CANARY}
        settings_data = self._settings_data(spec.artifact_sha256)
        pod = dataclasses.replace(
            stable,
            image_ref=spec.image_ref,
            selector_labels=selector,
            labels={**self.labels, **selector, "app.kubernetes.io/version": spec.model_version},
            settings_config_map=f"{name}-settings",
            config_hash=_settings_hash(settings_data),
        )
        gateway = self._args.router == GATEWAY_API
        args = ModelCanaryArgs(
            namespace=self.namespace,
            pod=pod,
            labels={**self.labels, routing.TRACK: routing.CANARY},
            replicas=spec.replicas,
            settings_data=settings_data,
            service_port=self._args.settings.service_port if gateway else 0,
            depends_on=[*self._ns_deps, *ready],
        )
        return ModelCanary(name, args, pulumi.ResourceOptions(parent=self))

    def _http_route(self) -> k8s.apiextensions.CustomResource:
        # Present whenever the router is gateway-api, canary or not: the route is how the Gateway reaches the
        # stack. An abort (weight 0) updates it to the stable Service alone before Pulumi deletes the canary,
        # since an update deletes replaced and removed resources last.
        a = self._args
        backends = [(self._name, 100 - a.canary_weight), (f"{self._name}-canary", a.canary_weight)]
        spec = routing.http_route_spec(
            a.gateway, a.settings.service_port, backends if a.canary else [(self._name, 100)]
        )
        return k8s.apiextensions.CustomResource(
            f"{self._name}-route",
            api_version=routing.HTTPROUTE_API_VERSION,
            kind="HTTPRoute",
            metadata=self._meta(self._name),
            spec=spec,
            opts=self._opts(self.service, *([self.canary] if self.canary else [])),
        )

    def _service(self) -> k8s.core.v1.Service:
        s = self._args.settings
        # pods: the labels both Deployments' pods share, so the split follows ready pods; gateway-api: the
        # stable pods only, and the HTTPRoute weighs this Service against the canary's.
        selector = (
            {**self.selector, routing.TRACK: routing.STABLE} if self._args.router == GATEWAY_API else self.selector
        )
        return k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=self._meta(self._name),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=s.service_type,
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(name="http", port=s.service_port, target_port="http", protocol="TCP")
                ],
            ),
            opts=self._opts(),
        )

    def _hpa(self) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        return k8s.autoscaling.v2.HorizontalPodAutoscaler(
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


def _settings_hash(settings_data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(settings_data, sort_keys=True).encode()).hexdigest()[:16]


def _load_balancer_address(status: Any) -> str:
    """The load balancer's IP or host name once the cloud assigned one; "" for ClusterIP."""
    ingress = status.load_balancer.ingress if status is not None and status.load_balancer is not None else None
    if not ingress:
        return ""
    first = ingress[0]
    return first.ip if first.ip else (first.hostname if first.hostname else "")
