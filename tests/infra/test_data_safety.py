"""Data safety (issue 10): prod's Namespace and Postgres Cluster are Pulumi-protected; nothing else is, and
dev, staging and PR stacks stay disposable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra import mocked_run, render
from infra.components.backup import PLUGIN_NAME
from infra.components.database import Database, DatabaseArgs
from infra.config import StackConfigError, load
from infra.mocked_run import ProgramRun
from tests.infra.support import BACKUPS_ON, RESTORE, SECRETS, run_stack
from tests.infra.test_project_files import reads_of_the_program

PROTECTED_KINDS = {"Namespace", "Cluster"}


def protected(run: ProgramRun) -> set[str]:
    return {r.kind for r in run.resources if r.protect}


def test_prod_protects_its_namespace_and_cluster_and_nothing_else() -> None:
    assert protected(run_stack("prod")) == PROTECTED_KINDS


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_other_stacks_can_be_torn_down(stack: str) -> None:
    assert protected(run_stack(stack)) == set()


def test_a_pr_stack_built_from_prod_settings_can_switch_protection_off() -> None:
    assert protected(run_stack("prod", {"protect": False})) == set()


def test_protection_follows_the_cluster_into_an_existing_namespace() -> None:
    # No Namespace of ours to protect, but the Cluster (and its volumes) still is.
    assert protected(run_stack("prod", {"namespace": "team-ml"})) == {"Cluster"}


def test_an_external_database_leaves_only_the_namespace_to_protect() -> None:
    assert protected(run_stack("prod", {"db.mode": "external", "db.backup.enabled": False})) == {"Namespace"}


def test_prod_renders_with_protection_marked(tmp_path: Path) -> None:
    paths = render.write_manifests(run_stack("prod"), tmp_path)
    marked = {yaml.safe_load(p.read_text())["kind"] for p in paths if p.read_text().startswith(render.PROTECTED_HEADER)}
    assert marked == PROTECTED_KINDS
    dev = render.write_manifests(run_stack("dev"), tmp_path / "dev")
    assert not [p for p in dev if "protect=true" in p.read_text()]


# The component on its own, its option seen by the mock monitor inside the Pulumi runtime.
@pytest.fixture
def prod_mocks() -> tuple[mocked_run.Recorder, Any]:
    config, secret_keys = mocked_run.load_stack_config("prod", secrets=SECRETS)
    recorder = mocked_run.use_mocks("prod", config, secret_keys)
    return recorder, load(pulumi.Config(), "prod")


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_database_component_protects_its_cluster_only_when_asked(prod_mocks: tuple[mocked_run.Recorder, Any]) -> Any:
    recorder, cfg = prod_mocks
    guarded = Database("guarded-db", DatabaseArgs(namespace="ns", settings=cfg.database, protect=True))
    plain = Database("plain-db", DatabaseArgs(namespace="ns", settings=cfg.database))

    def check(_: Any) -> None:
        flags = {r.name: r.protect for r in recorder.captured() if r.kind == "Cluster"}
        assert flags == {"guarded-db-cluster": True, "plain-db-cluster": False}

    return pulumi.Output.all(guarded.cluster.urn, plain.cluster.urn).apply(check)


def test_pipelines_read_the_key_infra_declares() -> None:
    """`pipelines destroy` checks the very key the program reads: declared, read by infra, on in prod."""
    from pipelines.targets.base import PROJECT, PROTECT_KEY

    declared = yaml.safe_load((mocked_run.REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    key = PROTECT_KEY.removeprefix(f"{PROJECT}:")
    assert declared[key]["type"] == "boolean" and declared[key]["default"] is False
    assert reads_of_the_program()[key] == "boolean"
    prod = yaml.safe_load((mocked_run.REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    assert prod[PROTECT_KEY] is True


# --- restore: a NEW Cluster bootstrapped from another stack's backups --------------------------------


def test_restore_bootstraps_a_new_cluster_from_the_source_backups() -> None:
    run = run_stack("staging", {**RESTORE, "db.restore.targetTime": "2026-11-29T08:00:00Z"})
    spec = run.one("Cluster").inputs["spec"]
    recovery = spec["bootstrap"]["recovery"]
    assert "initdb" not in spec["bootstrap"]
    (source,) = spec["externalClusters"]
    assert recovery["source"] == source["name"]
    assert recovery["recoveryTarget"] == {"targetTime": "2026-11-29T08:00:00Z"}
    # this stack's generated password becomes the owner's, so the service's DATABASE_URL works
    assert (recovery["owner"], recovery["secret"]["name"]) == ("modelship", "modelship-db-credentials")
    store = run.one("ObjectStore").inputs
    assert source["plugin"] == {
        "name": PLUGIN_NAME,
        "parameters": {"barmanObjectName": store["metadata"]["name"], "serverName": "modelship-db"},
    }
    assert store["spec"]["configuration"]["destinationPath"] == "s3://modelship-backups/prod"
    assert "retentionPolicy" not in store["spec"], "the restored stack never prunes its source's backups"
    assert run.of_kind("ScheduledBackup") == []  # staging does not back up, so the restore alone adds no schedule


def test_the_source_server_name_is_the_cluster_a_stack_backs_up() -> None:
    """db.restore.serverName's default is the name the backed-up stack's Cluster (its barman server) has."""
    declared = yaml.safe_load((mocked_run.REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    assert run_stack("prod").one("Cluster").inputs["metadata"]["name"] == declared["db.restore.serverName"]["default"]


def test_a_restored_stack_archives_to_its_own_path() -> None:
    run = run_stack("prod", {**RESTORE, "db.backup.destinationPath": "s3://modelship-backups/prod-restored"})
    paths = sorted(s.inputs["spec"]["configuration"]["destinationPath"] for s in run.of_kind("ObjectStore"))
    assert paths == ["s3://modelship-backups/prod", "s3://modelship-backups/prod-restored"]
    assert [p["parameters"]["barmanObjectName"] for p in run.one("Cluster").inputs["spec"]["plugins"]] == [
        "modelship-db-backups"
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"db.backup.destinationPath": ""}, "db.backup.enabled is true but db.backup.destinationPath"),
        ({"db.backup.destinationPath": "/var/backups"}, "pulumi config set db.backup.destinationPath s3://"),
        ({"db.backup.schedule": "0 3 * * *"}, "db.backup.schedule takes six cron fields"),
        ({"db.backup.retention": "30 days"}, "db.backup.retention"),
        ({"db.mode": "external"}, "db.backup.enabled needs db.mode cloudnative-pg"),
        (RESTORE, "db.backup.destinationPath equals db.restore.sourcePath"),
        ({**RESTORE, "db.backup.enabled": False, "db.restore.targetTime": "yesterday"}, "db.restore.targetTime"),
        ({**RESTORE, "db.backup.enabled": False, "db.mode": "external"}, "db.restore.sourcePath needs db.mode"),
    ],
)
def test_impossible_backup_settings_fail_naming_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError, match=re.escape(message)):
        run_stack("prod", overrides)


@pytest.mark.parametrize("overrides", [BACKUPS_ON, {**RESTORE, "db.backup.enabled": False}])
def test_the_object_store_credentials_are_required(overrides: dict[str, Any]) -> None:
    secrets = {k: v for k, v in SECRETS.items() if not k.startswith("db.backup.")}
    config, secret_keys = mocked_run.load_stack_config("dev", overrides, secrets)
    with pytest.raises(StackConfigError, match=re.escape("needs db.backup.accessKeyId and db.backup.secretAccessKey")):
        mocked_run.run_program("dev", config, secret_keys)
