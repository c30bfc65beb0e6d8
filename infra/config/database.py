"""The prediction-log Postgres (`db.*`): a CloudNativePG Cluster or an external URL, its backups and restores."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from infra.config import read

# Keys that hold credentials. Read only with read.secret, set only with `pulumi config set --secret`.
SECRETS = ("db.url", "db.backup.accessKeyId", "db.backup.secretAccessKey")

_RETENTION = re.compile(r"^[1-9][0-9]*[dwm]$")
# CNPG's ScheduledBackup schedule: six cron fields, seconds first (robfig/cron), or a macro.
_BACKUP_SCHEDULE = re.compile(r"^(\S+( \S+){5}|@(yearly|annually|monthly|weekly|daily|midnight|hourly))$")
_OBJECT_STORE_PATH = re.compile(r"^(s3|gs|https)://\S+$")  # S3 (and compatibles), GCS, Azure Blob
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class BackupConfig:
    """WAL archiving and scheduled base backups through the Barman Cloud plugin (db.backup.enabled)."""

    destination_path: str
    endpoint_url: str
    retention: str
    schedule: str


@dataclass(frozen=True)
class RestoreConfig:
    """Bootstrap a new Cluster from another Cluster's backups (db.restore.sourcePath, docs/runbook.md)."""

    source_path: str
    server_name: str
    endpoint_url: str
    target_time: str


@dataclass(frozen=True)
class DatabaseConfig:
    mode: str
    install_operator: bool
    operator_namespace: str
    instances: int
    storage_size: str
    storage_class: str
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    postgres_image: str
    name: str
    user: str
    url: pulumi.Output[str]
    backup: BackupConfig | None
    restore: RestoreConfig | None
    install_plugin: bool  # the Barman Cloud plugin's Helm chart, when backup or restore is on
    # object store credentials, shared by the backup and the restore source (db.backup.accessKeyId, ...)
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]


def load(c: pulumi.Config) -> DatabaseConfig:
    return DatabaseConfig(
        mode=read.string(c, "db.mode"),
        install_operator=read.boolean(c, "db.installOperator"),
        operator_namespace=read.string(c, "db.operatorNamespace"),
        instances=read.integer(c, "db.instances"),
        storage_size=read.string(c, "db.storageSize"),
        storage_class=read.string(c, "db.storageClass"),
        cpu_request=read.string(c, "db.cpuRequest"),
        cpu_limit=read.string(c, "db.cpuLimit"),
        memory_request=read.string(c, "db.memoryRequest"),
        memory_limit=read.string(c, "db.memoryLimit"),
        postgres_image=read.string(c, "db.postgresImage"),
        name=read.string(c, "db.name"),
        user=read.string(c, "db.user"),
        url=read.secret(c, "db.url"),
        backup=_backup(c),
        restore=_restore(c),
        install_plugin=read.boolean(c, "db.backup.installPlugin"),
        access_key_id=read.secret(c, "db.backup.accessKeyId"),
        secret_access_key=read.secret(c, "db.backup.secretAccessKey"),
    )


def _backup(c: pulumi.Config) -> BackupConfig | None:
    if not read.boolean(c, "db.backup.enabled"):
        return None
    return BackupConfig(
        destination_path=read.string(c, "db.backup.destinationPath"),
        endpoint_url=read.string(c, "db.backup.endpointUrl"),
        retention=read.string(c, "db.backup.retention"),
        schedule=read.string(c, "db.backup.schedule"),
    )


def _restore(c: pulumi.Config) -> RestoreConfig | None:
    source = read.string(c, "db.restore.sourcePath")
    if not source:
        return None
    return RestoreConfig(
        source_path=source,
        server_name=read.string(c, "db.restore.serverName"),
        endpoint_url=read.string(c, "db.restore.endpointUrl"),
        target_time=read.string(c, "db.restore.targetTime"),
    )


def secret_problems(c: pulumi.Config) -> list[str]:
    found = []
    if read.string(c, "db.mode") == "external" and not read.secret_text(c, "db.url").startswith(
        ("postgresql://", "postgres://")
    ):
        found.append("db.mode is external but db.url is not a postgresql:// URL: pulumi config set --secret db.url")
    uses_object_store = read.boolean(c, "db.backup.enabled") or bool(read.string(c, "db.restore.sourcePath"))
    if uses_object_store and not (
        read.secret_text(c, "db.backup.accessKeyId") and read.secret_text(c, "db.backup.secretAccessKey")
    ):
        found.append(
            "db.backup.enabled or db.restore.sourcePath needs db.backup.accessKeyId and db.backup.secretAccessKey: "
            "pulumi config set --secret db.backup.accessKeyId ... (and db.backup.secretAccessKey)"
        )
    return found


def problems(database: DatabaseConfig) -> list[str]:
    found = []
    if database.mode not in ("cloudnative-pg", "external"):
        found.append("db.mode must be cloudnative-pg or external")
    if database.mode == "cloudnative-pg" and database.instances < 1:
        found.append("db.instances must be at least 1")
    if database.backup and not _RETENTION.match(database.backup.retention):
        found.append("db.backup.retention must look like 30d, 4w or 6m")
    return found + _backup_problems(database) + _restore_problems(database)


def _backup_problems(database: DatabaseConfig) -> list[str]:
    backup = database.backup
    if backup is None:
        return []
    if database.mode == "external":
        return ["db.backup.enabled needs db.mode cloudnative-pg (back up a managed database with its provider)"]
    found = []
    if not _OBJECT_STORE_PATH.match(backup.destination_path):
        found.append(
            "db.backup.enabled is true but db.backup.destinationPath is not an object store path: "
            f"pulumi config set db.backup.destinationPath s3://<bucket>/<stack> (got {backup.destination_path!r})"
        )
    if not _BACKUP_SCHEDULE.match(backup.schedule):
        found.append(
            f"db.backup.schedule takes six cron fields, seconds first ('0 0 3 * * *'), got {backup.schedule!r}"
        )
    return found


def _restore_problems(database: DatabaseConfig) -> list[str]:
    restore = database.restore
    if restore is None:
        return []
    if database.mode == "external":
        return ["db.restore.sourcePath needs db.mode cloudnative-pg: a restore bootstraps a new CNPG Cluster"]
    found = []
    if not _OBJECT_STORE_PATH.match(restore.source_path):
        found.append(
            "db.restore.sourcePath must be an object store path such as s3://<bucket>/prod, "
            f"got {restore.source_path!r}"
        )
    if database.backup and database.backup.destination_path.rstrip("/") == restore.source_path.rstrip("/"):
        found.append(
            "db.backup.destinationPath equals db.restore.sourcePath: the new Cluster would archive into the backups "
            "it restores from; give the new stack its own path"
        )
    if not read.LABEL_VALUE.match(restore.server_name):
        found.append("db.restore.serverName must name the source Cluster (modelship's is modelship-db)")
    if restore.target_time and not _RFC3339.match(restore.target_time):
        found.append(
            f"db.restore.targetTime must be RFC 3339 such as 2026-11-29T08:00:00Z, got {restore.target_time!r}"
        )
    return found
