"""Backups and restore of the CNPG Cluster through the Barman Cloud plugin (plugin-barman-cloud).

Pure builders of the custom resources' specs, camelCase as the CRDs spell them (infra/schemas/ holds the CRDs
of the pinned versions, and tests/infra validates every rendered object against them):

- an `ObjectStore` (barmancloud.cnpg.io/v1) per bucket path: where WAL and base backups go, with the
  retention policy the plugin enforces;
- the Cluster's `spec.plugins` entry that makes the plugin its WAL archiver (it replaces the in-tree
  `spec.backup.barmanObjectStore`, deprecated since CNPG 1.26);
- a `ScheduledBackup` with `method: plugin`, since a WAL archive without a base backup cannot be restored;
- for a restore, `bootstrap.recovery` from an `externalClusters` entry that reads another ObjectStore.

Usage is from the plugin's docs (web/docs/usage.md and retention.md at the pinned tag).
"""

from __future__ import annotations

from typing import Any

from infra.config import BackupConfig, RestoreConfig

PLUGIN_NAME = "barman-cloud.cloudnative-pg.io"  # the name the plugin registers with the operator
OBJECT_STORE_API_VERSION = "barmancloud.cnpg.io/v1"
# The plugin's Helm chart (cloudnative-pg/charts, charts/plugin-barman-cloud) and the release it installs.
PLUGIN_CHART = "plugin-barman-cloud"
PLUGIN_CHART_VERSION = "0.7.0"
PLUGIN_VERSION = "0.13.0"
RESTORE_SOURCE = "origin"  # the externalClusters entry a restore bootstraps from


def object_store_spec(
    destination_path: str, endpoint_url: str, credentials_secret: str, retention: str | None
) -> dict[str, Any]:
    """An ObjectStore's spec. serverName stays unset: the plugin takes it from the Cluster's parameters."""
    configuration: dict[str, Any] = {
        "destinationPath": destination_path,
        "s3Credentials": {
            "accessKeyId": {"name": credentials_secret, "key": "ACCESS_KEY_ID"},
            "secretAccessKey": {"name": credentials_secret, "key": "ACCESS_SECRET_KEY"},
        },
        "wal": {"compression": "gzip"},
        "data": {"compression": "gzip"},
    }
    if endpoint_url:
        configuration["endpointURL"] = endpoint_url
    spec: dict[str, Any] = {"configuration": configuration}
    if retention is not None:
        spec["retentionPolicy"] = retention
    return spec


def archiver_plugin(object_store: str) -> dict[str, Any]:
    """The Cluster's `spec.plugins` entry: archive WAL (and take base backups) into OBJECT_STORE."""
    return {"name": PLUGIN_NAME, "isWALArchiver": True, "parameters": {"barmanObjectName": object_store}}


def scheduled_backup_spec(cluster: str, backup: BackupConfig) -> dict[str, Any]:
    return {
        "cluster": {"name": cluster},
        "schedule": backup.schedule,
        "method": "plugin",
        "pluginConfiguration": {"name": PLUGIN_NAME},
        # A first base backup as soon as the Cluster is up: until then the WAL archive restores nothing.
        "immediate": True,
        # The Backup objects belong to this ScheduledBackup, so they go with it rather than pile up.
        "backupOwnerReference": "self",
    }


def recovery_bootstrap(restore: RestoreConfig, database: str, owner: str, credentials_secret: str) -> dict[str, Any]:
    """`spec.bootstrap` of a NEW Cluster recovered from RESTORE_SOURCE; the owner gets this stack's password."""
    recovery: dict[str, Any] = {
        "source": RESTORE_SOURCE,
        "database": database,
        "owner": owner,
        "secret": {"name": credentials_secret},
    }
    if restore.target_time:
        recovery["recoveryTarget"] = {"targetTime": restore.target_time}
    return {"recovery": recovery}


def restore_source(restore: RestoreConfig, object_store: str) -> dict[str, Any]:
    """The `spec.externalClusters` entry: the source Cluster's backups, read through OBJECT_STORE."""
    parameters = {"barmanObjectName": object_store, "serverName": restore.server_name}
    return {"name": RESTORE_SOURCE, "plugin": {"name": PLUGIN_NAME, "parameters": parameters}}
