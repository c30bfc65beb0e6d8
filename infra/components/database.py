"""Database: the prediction-log Postgres, either a CloudNativePG Cluster or an external DATABASE_URL.

Never a bare Postgres Deployment and never an emptyDir: CNPG gives every instance a PersistentVolumeClaim,
streaming replicas, failover and (optionally) barman backups to object storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.config import DatabaseConfig

# The pinned CloudNativePG release. The Cluster CR is checked in tests against the subset of this
# version's openAPIV3Schema stored next to it; bump all three together.
CNPG_CHART_VERSION = "0.26.0"
CNPG_OPERATOR_VERSION = "1.27.0"
CNPG_API_VERSION = "postgresql.cnpg.io/v1"
CNPG_CHART_REPO = "https://cloudnative-pg.github.io/charts"
CNPG_CLUSTER_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / f"cnpg-{CNPG_OPERATOR_VERSION}-cluster.json"
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
        s, child = args.settings, pulumi.ResourceOptions(parent=self)
        depends: list[pulumi.Resource] = []
        if s.install_operator:
            depends.append(_operator_release(name, s.operator_namespace, child))
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        secret_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        user: pulumi.Output[str] = pulumi.Output.secret(s.user)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-credentials", namespace=args.namespace),
            type="kubernetes.io/basic-auth",
            string_data={"username": user, "password": secret_password},
            opts=child,
        )
        depends.append(credentials)
        backup_secret = _backup_secret(name, args.namespace, s, child)
        if backup_secret is not None:
            depends.append(backup_secret)
        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=CNPG_API_VERSION,
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace),
            spec=cluster_spec(s, credentials_secret=f"{name}-credentials", backup_secret=f"{name}-backup"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, protect=args.protect),
        )
        self.host = pulumi.Output.concat(name, "-rw.", args.namespace, ".svc.cluster.local")
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                "postgresql://",
                s.user,
                ":",
                secret_password,
                "@",
                self.host,
                f":{POSTGRES_PORT}/",
                s.name,
                "?sslmode=require",
            )
        )
        self.pod_labels = {"cnpg.io/cluster": name}
        self.operator_namespace = s.operator_namespace


def cluster_spec(s: DatabaseConfig, credentials_secret: str, backup_secret: str) -> dict[str, Any]:
    """The `spec` of the CNPG Cluster (camelCase, as the CRD spells it)."""
    storage: dict[str, Any] = {"size": s.storage_size}
    if s.storage_class:
        storage["storageClass"] = s.storage_class
    spec: dict[str, Any] = {
        "instances": s.instances,
        "imageName": s.postgres_image,
        "primaryUpdateStrategy": "unsupervised",
        "enableSuperuserAccess": False,
        # A PDB on a single instance would block every node drain; CNPG's own PDBs need replicas.
        "enablePDB": s.instances > 1,
        "bootstrap": {"initdb": {"database": s.name, "owner": s.user, "secret": {"name": credentials_secret}}},
        "storage": storage,
        "resources": {
            "requests": {"cpu": s.cpu_request, "memory": s.memory_request},
            "limits": {"cpu": s.cpu_limit, "memory": s.memory_limit},
        },
        "affinity": {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname"},
    }
    if s.backup is not None:
        spec["backup"] = {
            "retentionPolicy": s.backup.retention,
            "barmanObjectStore": _object_store(s, backup_secret),
        }
    return spec


def _object_store(s: DatabaseConfig, backup_secret: str) -> dict[str, Any]:
    assert s.backup is not None
    store: dict[str, Any] = {
        "destinationPath": s.backup.destination_path,
        "s3Credentials": {
            "accessKeyId": {"name": backup_secret, "key": "ACCESS_KEY_ID"},
            "secretAccessKey": {"name": backup_secret, "key": "ACCESS_SECRET_KEY"},
        },
        "wal": {"compression": "gzip"},
        "data": {"compression": "gzip"},
    }
    if s.backup.endpoint_url:
        store["endpointURL"] = s.backup.endpoint_url
    return store


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


def _backup_secret(
    name: str, namespace: pulumi.Input[str], s: DatabaseConfig, opts: pulumi.ResourceOptions
) -> k8s.core.v1.Secret | None:
    if s.backup is None:
        return None
    key_id: pulumi.Output[str] = pulumi.Output.secret(s.backup.access_key_id)
    access_key: pulumi.Output[str] = pulumi.Output.secret(s.backup.secret_access_key)
    return k8s.core.v1.Secret(
        f"{name}-backup",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{name}-backup", namespace=namespace),
        string_data={"ACCESS_KEY_ID": key_id, "ACCESS_SECRET_KEY": access_key},
        opts=opts,
    )
