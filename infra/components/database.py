"""Database: the prediction-log Postgres, either a CloudNativePG Cluster or an external DATABASE_URL.

Never a bare Postgres Deployment and never an emptyDir: CNPG gives every instance a PersistentVolumeClaim,
streaming replicas and failover. Backups (db.backup.*) and restores (db.restore.*) go through the Barman
Cloud plugin (infra/components/backup.py); `protect` guards the Cluster in prod (docs/deploy.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components import backup
from infra.config import DatabaseConfig

# The pinned CloudNativePG release and Barman Cloud plugin. Every custom resource is checked in tests against
# the CRDs of these versions, copied unchanged into infra/schemas/ (version in the file name): bump together.
CNPG_CHART_VERSION = "0.26.0"
CNPG_OPERATOR_VERSION = "1.27.0"
CNPG_API_VERSION = "postgresql.cnpg.io/v1"
CNPG_CHART_REPO = "https://cloudnative-pg.github.io/charts"
_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
CRD_FILES = {
    (CNPG_API_VERSION, "Cluster"): _SCHEMAS / f"cnpg-{CNPG_OPERATOR_VERSION}-postgresql.cnpg.io_clusters.yaml",
    (CNPG_API_VERSION, "ScheduledBackup"): _SCHEMAS
    / f"cnpg-{CNPG_OPERATOR_VERSION}-postgresql.cnpg.io_scheduledbackups.yaml",
    (backup.OBJECT_STORE_API_VERSION, "ObjectStore"): _SCHEMAS
    / f"plugin-barman-cloud-{backup.PLUGIN_VERSION}-barmancloud.cnpg.io_objectstores.yaml",
}
POSTGRES_PORT = 5432
CNPG_STATUS_PORT = 8000  # instance manager endpoint the operator and the other instances call


@dataclass(frozen=True)
class DatabaseArgs:
    namespace: pulumi.Input[str]
    settings: DatabaseConfig
    # Pulumi `protect` on the Cluster: a destroy, or a change that would replace it, fails at preview
    # instead of deleting it, and with it (CNPG owns them) every instance's PersistentVolumeClaim.
    protect: bool = False


class Database(pulumi.ComponentResource):
    """Outputs `url` (secret), `host`, and the labels of the Postgres pods (None when external)."""

    url: pulumi.Output[str]
    host: pulumi.Output[str]
    pod_labels: dict[str, str] | None
    operator_namespace: str | None

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelship:index:Database", name, None, opts)
        if args.settings.mode == "external":
            self._external(args.settings)
        else:
            self._cloudnative_pg(name, args)
        self.register_outputs({"host": self.host, "url": self.url})

    def _external(self, settings: DatabaseConfig) -> None:
        self.url = settings.url  # infra.config checked it is a postgresql:// URL
        # The host name is not a credential; export it in the clear.
        self.host = pulumi.Output.unsecret(self.url.apply(lambda u: urlsplit(u).hostname or ""))
        self.pod_labels = None
        self.operator_namespace = None

    def _cloudnative_pg(self, name: str, args: DatabaseArgs) -> None:
        config, child = args.settings, pulumi.ResourceOptions(parent=self)
        depends: list[pulumi.Resource] = []
        operator = _operator_release(name, config.operator_namespace, child) if config.install_operator else None
        depends += [operator] if operator else []
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        secret_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        user: pulumi.Output[str] = pulumi.Output.secret(config.user)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-credentials", namespace=args.namespace),
            type="kubernetes.io/basic-auth",
            string_data={"username": user, "password": secret_password},
            opts=child,
        )
        depends.append(credentials)
        depends += self._object_stores(name, args.namespace, config, operator)
        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=CNPG_API_VERSION,
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace),
            spec=cluster_spec(config, credentials_secret=f"{name}-credentials", object_store_prefix=name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, protect=args.protect),
        )
        if config.backup is not None:
            self._scheduled_backup(name, args.namespace, config)
        self.host = pulumi.Output.concat(name, "-rw.", args.namespace, ".svc.cluster.local")
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                "postgresql://",
                config.user,
                ":",
                secret_password,
                "@",
                self.host,
                f":{POSTGRES_PORT}/",
                config.name,
                "?sslmode=require",
            )
        )
        self.pod_labels = {"cnpg.io/cluster": name}
        self.operator_namespace = config.operator_namespace

    def _object_stores(
        self, name: str, namespace: pulumi.Input[str], config: DatabaseConfig, operator: pulumi.Resource | None
    ) -> list[pulumi.Resource]:
        """The backup credentials, the plugin and an ObjectStore per bucket path; [] when neither is on."""
        if config.backup is None and config.restore is None:
            return []
        child = pulumi.ResourceOptions(parent=self)
        ready: list[pulumi.Resource] = [_backup_secret(name, namespace, config, child)]
        if config.install_plugin:
            ready.append(_plugin_release(name, config.operator_namespace, operator, child))
        stores: list[tuple[str, str, str, str | None]] = []  # (suffix, path, endpoint, retention)
        if config.backup is not None:
            stores.append(
                ("backups", config.backup.destination_path, config.backup.endpoint_url, config.backup.retention)
            )
        if config.restore is not None:
            stores.append((backup.RESTORE_SOURCE, config.restore.source_path, config.restore.endpoint_url, None))
        return [
            k8s.apiextensions.CustomResource(
                f"{name}-{suffix}",
                api_version=backup.OBJECT_STORE_API_VERSION,
                kind="ObjectStore",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-{suffix}", namespace=namespace),
                spec=backup.object_store_spec(path, endpoint, f"{name}-backup", retention),
                opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
            )
            for suffix, path, endpoint, retention in stores
        ]

    def _scheduled_backup(self, name: str, namespace: pulumi.Input[str], config: DatabaseConfig) -> None:
        assert config.backup is not None
        k8s.apiextensions.CustomResource(
            f"{name}-scheduled-backup",
            api_version=CNPG_API_VERSION,
            kind="ScheduledBackup",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-scheduled", namespace=namespace),
            spec=backup.scheduled_backup_spec(name, config.backup),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )


def cluster_spec(config: DatabaseConfig, credentials_secret: str, object_store_prefix: str) -> dict[str, Any]:
    """The `spec` of the CNPG Cluster (camelCase, as the CRD spells it)."""
    storage: dict[str, Any] = {"size": config.storage_size}
    if config.storage_class:
        storage["storageClass"] = config.storage_class
    spec: dict[str, Any] = {
        "instances": config.instances,
        "imageName": config.postgres_image,
        "primaryUpdateStrategy": "unsupervised",
        "enableSuperuserAccess": False,
        # A PDB on a single instance would block every node drain; CNPG's own PDBs need replicas.
        "enablePDB": config.instances > 1,
        "bootstrap": {
            "initdb": {"database": config.name, "owner": config.user, "secret": {"name": credentials_secret}}
        },
        "storage": storage,
        "resources": {
            "requests": {"cpu": config.cpu_request, "memory": config.memory_request},
            "limits": {"cpu": config.cpu_limit, "memory": config.memory_limit},
        },
        "affinity": {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname"},
    }
    if config.backup is not None:
        spec["plugins"] = [backup.archiver_plugin(f"{object_store_prefix}-backups")]
    if config.restore is not None:
        spec["bootstrap"] = backup.recovery_bootstrap(config.restore, config.name, config.user, credentials_secret)
        spec["externalClusters"] = [
            backup.restore_source(config.restore, f"{object_store_prefix}-{backup.RESTORE_SOURCE}")
        ]
    return spec


def _operator_release(name: str, namespace: str, opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        f"{name}-operator",
        chart="cloudnative-pg",
        version=CNPG_CHART_VERSION,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CNPG_CHART_REPO),
        namespace=namespace,
        create_namespace=True,
        values={"crds": {"create": True}},
        opts=opts,
    )


def _plugin_release(
    name: str, namespace: str, operator: pulumi.Resource | None, opts: pulumi.ResourceOptions
) -> k8s.helm.v3.Release:
    # The plugin must run in the operator's namespace (its installation docs); it needs cert-manager.
    return k8s.helm.v3.Release(
        f"{name}-barman-cloud",
        chart=backup.PLUGIN_CHART,
        version=backup.PLUGIN_CHART_VERSION,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CNPG_CHART_REPO),
        namespace=namespace,
        create_namespace=True,
        values={"crds": {"create": True}},
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[operator] if operator else [])),
    )


def _backup_secret(
    name: str, namespace: pulumi.Input[str], config: DatabaseConfig, opts: pulumi.ResourceOptions
) -> k8s.core.v1.Secret:
    key_id: pulumi.Output[str] = pulumi.Output.secret(config.access_key_id)
    access_key: pulumi.Output[str] = pulumi.Output.secret(config.secret_access_key)
    return k8s.core.v1.Secret(
        f"{name}-backup",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-backup", namespace=namespace),
        string_data={"ACCESS_KEY_ID": key_id, "ACCESS_SECRET_KEY": access_key},
        opts=opts,
    )
