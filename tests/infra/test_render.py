"""Rendered manifests: every Kubernetes object passes `kubernetes-validate --strict` for 1.30 and the newest
bundled version; the CNPG Cluster passes the schema of the pinned CNPG version; secrets show as [secret]."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from infra import harness, render
from infra.components.database import CNPG_API_VERSION, CNPG_CLUSTER_SCHEMA, CNPG_OPERATOR_VERSION
from infra.components.monitoring import API_VERSION as PROMETHEUS_OPERATOR_API
from infra.harness import ProgramRun
from tests.infra.support import LEAK_MARKER, MOCK_PASSWORD_PREFIX, STACKS, run_stack
from tests.monitoring import crds as prometheus_operator_crds

KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def cnpg_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(CNPG_CLUSTER_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def written(run: ProgramRun, out: Path) -> list[dict[str, Any]]:
    paths = render.write_manifests(run, out)
    assert sorted(out.glob("*.yaml")) == sorted(paths)
    return [yaml.safe_load(p.read_text()) for p in paths]


def validate(manifest: dict[str, Any]) -> None:
    if manifest["apiVersion"] == CNPG_API_VERSION:
        cnpg_validator().validate(manifest)
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
        {"db.backup.destinationPath": "s3://b/p", "db.backup.endpointUrl": "https://storage.googleapis.com"},
        {"db.mode": "external", "service.type": "LoadBalancer", "hpa.rpsPerPod": 40},
        {"retention.enabled": False},
    ],
    ids=["gpu", "backups", "external-db", "no-retention"],
)
def test_variants_render_valid_objects(overrides: dict[str, Any], tmp_path: Path) -> None:
    for manifest in written(run_stack("prod", overrides), tmp_path):
        validate(manifest)


def test_the_validators_do_reject_bad_objects(tmp_path: Path) -> None:
    """Both validators can fail: a misspelt field is caught in a Deployment, a CronJob and the CNPG Cluster."""
    manifests = {m["kind"]: m for m in written(run_stack("prod"), tmp_path)}
    deployment = manifests["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    cronjob = manifests["CronJob"]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["commands"] = ["python"]
    for version in KUBERNETES_VERSIONS:
        for broken in (deployment, cronjob):
            with pytest.raises(kubernetes_validate.ValidationError):
                kubernetes_validate.validate(broken, version, strict=True)
    cluster = manifests["Cluster"]
    cluster["spec"]["storage"]["sizee"] = "1Gi"
    with pytest.raises(jsonschema.ValidationError):
        cnpg_validator().validate(cluster)
    cluster["spec"]["storage"].pop("sizee")
    cluster["spec"]["instances"] = 0
    with pytest.raises(jsonschema.ValidationError):
        cnpg_validator().validate(cluster)


def test_the_cnpg_schema_is_the_pinned_version() -> None:
    schema = json.loads(CNPG_CLUSTER_SCHEMA.read_text())
    assert CNPG_OPERATOR_VERSION in CNPG_CLUSTER_SCHEMA.name
    assert CNPG_OPERATOR_VERSION in schema["title"]
    assert schema["properties"]["apiVersion"] == {"const": CNPG_API_VERSION}


def test_secrets_render_masked(tmp_path: Path) -> None:
    written(run_stack("prod", {"image.registryUsername": "ci-bot"}), tmp_path)
    text = "\n".join(p.read_text() for p in sorted(tmp_path.iterdir()))
    assert LEAK_MARKER not in text
    assert MOCK_PASSWORD_PREFIX not in text
    secrets = [yaml.safe_load(p.read_text()) for p in tmp_path.glob("*-secret-*.yaml")]
    assert secrets
    for secret in secrets:
        assert set(secret["stringData"].values()) == {harness.SECRET_MASK}
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
        cwd=harness.REPO_ROOT,
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
    config, secret_keys = harness.load_stack_config("prod", overrides={"db.mode": "external"})
    manifests = written(harness.run_program("prod", config, secret_keys), tmp_path)
    (settings,) = [m for m in manifests if m["kind"] == "Secret" and "DATABASE_URL" in m["stringData"]]
    assert settings["stringData"]["DATABASE_URL"] == harness.SECRET_MASK
    for manifest in manifests:
        validate(manifest)


def test_encrypted_stack_values_become_secret_placeholders(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((harness.REPO_ROOT / "Pulumi.yaml").read_text())
    stack = {"config": {"modelship:auth.apiKeys": {"secure": "v1:abc:def"}, "modelship:auth.required": True}}
    (tmp_path / "Pulumi.qa.yaml").write_text(yaml.safe_dump(stack))
    config, secret_keys = harness.load_stack_config("qa", secrets={}, root=tmp_path)
    assert config["modelship:auth.apiKeys"] == harness.SECRET_MASK
    assert config["modelship:auth.required"] == "true"
    assert config["modelship:image.registryPassword"] == ""  # not set in the stack: its default
    assert "modelship:auth.apiKeys" in secret_keys
