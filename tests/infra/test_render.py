"""Rendered manifests: every Kubernetes object passes `kubernetes-validate --strict` for 1.30 and the newest
bundled version; every custom resource (Cluster, ScheduledBackup, ObjectStore) passes the real CRD of the
pinned CNPG and Barman Cloud plugin versions (tests/infra/crds.py); secrets show as [secret]."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from infra import mocked_run, render
from infra.components import backup, routing
from infra.components.database import CNPG_API_VERSION, CNPG_OPERATOR_VERSION
from infra.components.monitoring import API_VERSION as PROMETHEUS_OPERATOR_API
from infra.mocked_run import ProgramRun
from tests.infra import crds
from tests.infra.crds import CRD_FILES
from tests.infra.support import BACKUPS_ON, LEAK_MARKER, MOCK_PASSWORD_PREFIX, RESTORE, STACKS, run_stack
from tests.monitoring import crds as prometheus_operator_crds

KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def written(run: ProgramRun, out: Path) -> list[dict[str, Any]]:
    paths = render.write_manifests(run, out)
    assert sorted(out.glob("*.yaml")) == sorted(paths)
    return [yaml.safe_load(p.read_text()) for p in paths]


def validate(manifest: dict[str, Any]) -> None:
    if crds.is_custom(manifest):
        crds.validate(manifest)
        return
    if manifest["apiVersion"] == PROMETHEUS_OPERATOR_API:
        prometheus_operator_crds.validate(manifest)
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_objects_are_valid_kubernetes(stack: str, tmp_path: Path) -> None:
    manifests = written(run_stack(stack), tmp_path)
    kinds = {m["kind"] for m in manifests}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Cluster",
        "Secret",
        "CronJob",
    } <= kinds
    for manifest in manifests:
        validate(manifest)


@pytest.mark.parametrize(
    "overrides",
    [
        {"gpu.enabled": True, "gpu.cluster": "c", "gpu.location": "europe-west4"},
        {"db.mode": "external", "db.backup.enabled": False, "service.type": "LoadBalancer", "hpa.rpsPerPod": 40},
        {"retention.enabled": False},
        {"db.backup.enabled": False},
        {**RESTORE, "db.backup.destinationPath": "s3://modelship-backups/prod-restored"},
        {**RESTORE, "db.backup.enabled": False, "db.restore.targetTime": "2026-11-29T08:00:00Z"},
    ],
    ids=["gpu", "external-db", "no-retention", "no-backups", "restore-and-back-up", "restore-to-a-point-in-time"],
)
def test_variants_render_valid_objects(overrides: dict[str, Any], tmp_path: Path) -> None:
    for manifest in written(run_stack("prod", overrides), tmp_path):
        validate(manifest)


@pytest.mark.parametrize("stack", STACKS)
def test_with_backups_on_every_stack_renders_cluster_object_store_and_schedule_valid(
    stack: str, tmp_path: Path
) -> None:
    manifests = written(run_stack(stack, BACKUPS_ON), tmp_path)
    custom = sorted(m["kind"] for m in manifests if crds.is_custom(m))
    assert custom == ["Cluster", "ObjectStore", "ScheduledBackup"]
    for manifest in manifests:
        validate(manifest)


def test_the_validators_do_reject_bad_objects(tmp_path: Path) -> None:
    """The validators can fail: a misspelt field in a Deployment and a CronJob, and each CRD rule kind."""
    manifests = {m["kind"]: m for m in written(run_stack("prod"), tmp_path)}
    deployment = manifests["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    cronjob = manifests["CronJob"]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["commands"] = ["python"]
    for version in KUBERNETES_VERSIONS:
        for broken in (deployment, cronjob):
            with pytest.raises(kubernetes_validate.ValidationError):
                kubernetes_validate.validate(broken, version, strict=True)
    for kind, path, value, message in BROKEN_CUSTOM_RESOURCES:
        broken = json.loads(json.dumps(manifests[kind]))
        _set(broken, path, value)
        with pytest.raises(jsonschema.ValidationError, match=message):
            crds.validate(broken)


# One way to break each custom resource per rule kind the CRDs declare: unknown field, minimum, enum,
# pattern, required, CEL (x-kubernetes-validations), the metadata checks and apiVersion.
BROKEN_CUSTOM_RESOURCES = [
    ("Cluster", "spec.storage.sizee", "1Gi", "Additional properties"),
    ("Cluster", "spec.instances", 0, "less than the minimum"),
    ("Cluster", "spec.primaryUpdateStrategy", "sometimes", "is not one of"),
    (
        "Cluster",
        "spec.imageCatalogRef",
        {"apiGroup": "postgresql.cnpg.io", "kind": "ImageCatalog", "name": "pg", "major": 16},
        "imageName and imageCatalogRef are mutually exclusive",
    ),
    ("Cluster", "metadata.name", "Modelship_DB", "does not match"),
    ("Cluster", "apiVersion", "postgresql.cnpg.io/v2", "no CRD is pinned for postgresql.cnpg.io/v2 Cluster"),
    ("ScheduledBackup", "spec.method", "snapshot", "is not one of"),
    ("ScheduledBackup", "spec.backupOwnerReference", "parent", "is not one of"),
    ("ScheduledBackup", "spec.cluster", {}, "'name' is a required property"),
    ("ObjectStore", "spec.retentionPolicy", "30 days", "does not match"),
    ("ObjectStore", "spec.configuration.serverName", "modelship-db", "use the 'serverName' plugin parameter"),
    ("ObjectStore", "spec.configuration.wal.compression", "zip", "is not one of"),
]


def _set(obj: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        obj = obj[key]
    obj[leaf] = value


def test_the_crds_are_the_pinned_versions_copied_unchanged() -> None:
    assert {path.parent.name for path in CRD_FILES.values()} == {"schemas"}
    for (api_version, kind), path in CRD_FILES.items():
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition"
        assert f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}" == api_version
        assert crd["spec"]["names"]["kind"] == kind
    assert CRD_FILES[(CNPG_API_VERSION, "Cluster")].name.startswith(f"cnpg-{CNPG_OPERATOR_VERSION}-")
    assert CRD_FILES[(backup.OBJECT_STORE_API_VERSION, "ObjectStore")].name.startswith(
        f"plugin-barman-cloud-{backup.PLUGIN_VERSION}-"
    )
    route = CRD_FILES[(routing.HTTPROUTE_API_VERSION, "HTTPRoute")]
    assert route.name.startswith(f"gateway-api-{routing.GATEWAY_API_VERSION.lstrip('v')}-")
    sources = yaml.safe_load((CRD_FILES[(CNPG_API_VERSION, "Cluster")].parent / "SOURCES.yaml").read_text())["files"]
    assert set(sources) == {path.name for path in CRD_FILES.values()}
    for path in CRD_FILES.values():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sources[path.name]["sha256"], path.name


def test_secrets_render_masked(tmp_path: Path) -> None:
    written(run_stack("prod", {"image.registryUsername": "ci-bot"}), tmp_path)
    text = "\n".join(p.read_text() for p in sorted(tmp_path.iterdir()))
    assert LEAK_MARKER not in text
    assert MOCK_PASSWORD_PREFIX not in text
    secrets = [yaml.safe_load(p.read_text()) for p in tmp_path.glob("*-secret-*.yaml")]
    assert secrets
    for secret in secrets:
        assert set(secret["stringData"].values()) == {mocked_run.SECRET_MASK}
    listing = yaml.safe_load((tmp_path / render.NON_KUBERNETES_FILE).read_text())
    assert {r["type"] for r in listing} >= {"docker:index/image:Image", "kubernetes:helm.sh/v3:Release"}


def test_rerendering_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "99-deployment-gone.yaml").write_text("kind: Deployment\n")
    written(run_stack("dev"), tmp_path)
    assert not (tmp_path / "99-deployment-gone.yaml").exists()


def test_make_manifests_command(tmp_path: Path) -> None:
    """The exact command `make manifests STACK=prod` runs, in a fresh interpreter."""
    out = tmp_path / "manifests" / "prod"
    done = subprocess.run(
        [sys.executable, "-m", "infra.render", "--stack", "prod", "--out", str(out)],
        cwd=mocked_run.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    files = sorted(out.glob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        validate(yaml.safe_load(path.read_text()))
    assert "[secret]" in "".join(p.read_text() for p in files)


def test_rendering_needs_no_secrets_even_for_an_external_database(tmp_path: Path) -> None:
    config, secret_keys = mocked_run.load_stack_config(
        "prod", overrides={"db.mode": "external", "db.backup.enabled": False}
    )
    manifests = written(mocked_run.run_program("prod", config, secret_keys), tmp_path)
    (settings,) = [m for m in manifests if m["kind"] == "Secret" and "DATABASE_URL" in m["stringData"]]
    assert settings["stringData"]["DATABASE_URL"] == mocked_run.SECRET_MASK
    for manifest in manifests:
        validate(manifest)


def test_encrypted_stack_values_become_secret_placeholders(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((mocked_run.REPO_ROOT / "Pulumi.yaml").read_text())
    stack = {"config": {"modelship:auth.apiKeys": {"secure": "v1:abc:def"}, "modelship:auth.required": True}}
    (tmp_path / "Pulumi.qa.yaml").write_text(yaml.safe_dump(stack))
    config, secret_keys = mocked_run.load_stack_config("qa", secrets={}, root=tmp_path)
    assert config["modelship:auth.apiKeys"] == mocked_run.SECRET_MASK
    assert config["modelship:auth.required"] == "true"
    # not set in the stack: its default, which the engine writes by path into the `image` object
    assert json.loads(config["modelship:image"])["registryPassword"] == ""
    assert "modelship:image.registryPassword" not in config
    assert "modelship:auth.apiKeys" in secret_keys
