"""The switches: GPU pool on, an adopted digest (promote/rollback), an external database, backups,
a registry login, a LoadBalancer, no HPA; and configurations the program must refuse."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest
from pulumi.runtime.rpc import is_rpc_secret

from infra import mocked_run
from infra.components.gpu import GPU_RESOURCE
from infra.components.image import ModelImage, ModelImageArgs
from infra.config import StackConfigError
from infra.mocked_run import ProgramRun
from tests.infra.support import BACKUPS_ON, LEAK_MARKER, SECRETS, container, pod_spec, run_stack

DIGEST = "registry.example.com/modelship@sha256:" + "ab" * 32


def plaintext(run: ProgramRun) -> str:
    return json.dumps([list(mocked_run.plaintext_strings(r.inputs)) for r in run.resources])


# --- GPU -----------------------------------------------------------------------------------------


def test_gpu_pool_is_a_tainted_autoscaled_gke_node_pool(gpu_run: ProgramRun) -> None:
    pool = gpu_run.one("NodePool")
    assert pool.type == "gcp:container/nodePool:NodePool"
    assert pool.parent_type == "modelship:index:GpuNodePool"
    inputs = pool.inputs
    assert (inputs["cluster"], inputs["location"]) == ("ml-cluster", "europe-west4")
    assert inputs["autoscaling"] == {"minNodeCount": 0, "maxNodeCount": 2}
    node = inputs["nodeConfig"]
    assert node["guestAccelerators"][0]["type"] == "nvidia-l4"
    assert node["guestAccelerators"][0]["count"] == 1
    assert node["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert node["labels"]["modelship.dev/pool"] == "gpu"


def test_gpu_pods_tolerate_select_and_request_the_gpu(gpu_run: ProgramRun) -> None:
    pod = pod_spec(gpu_run)
    node_labels = gpu_run.one("NodePool").inputs["nodeConfig"]["labels"]
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]
    assert pod["nodeSelector"] == node_labels
    assert container(gpu_run)["resources"]["limits"][GPU_RESOURCE] == "1"
    assert gpu_run.one("Image").inputs["build"]["args"]["BASE_IMAGE"] == "registry.example.com/cuda-python:12.6-py3.11"


def test_switching_gpu_on_changes_nothing_else(gpu_run: ProgramRun) -> None:
    prod = run_stack("prod")
    assert {r.name for r in gpu_run.resources} - {r.name for r in prod.resources} == {
        "modelship-gpu",
        "modelship-gpu-pool",
    }
    assert {k: v for k, v in pod_spec(gpu_run).items() if k not in ("tolerations", "nodeSelector", "containers")} == {
        k: v for k, v in pod_spec(prod).items() if k != "containers"
    }


def test_gpu_needs_a_cluster_to_join() -> None:
    with pytest.raises(StackConfigError, match=re.escape("gpu.cluster and gpu.location")):
        run_stack("dev", {"gpu.enabled": True})


# --- images: adopt a digest (promote, rollback) --------------------------------------------------


def test_digest_ref_deploys_without_building() -> None:
    run = run_stack("staging", {"image.digestRef": DIGEST})
    assert run.of_kind("Image") == []
    assert container(run)["image"] == DIGEST
    assert run.exports["imageRef"].value == DIGEST


def test_a_new_model_version_is_a_new_digest() -> None:
    first = container(run_stack("dev"))["image"]
    second = container(run_stack("dev", {"modelVersion": "house-price-111111111111"}))["image"]
    assert first != second
    assert re.search(r"@sha256:[0-9a-f]{64}$", second)


@pytest.mark.parametrize("ref", ["registry.example.com/modelship:v1", "modelship@sha256:abc", ""])
def test_tags_are_not_digests(ref: str) -> None:
    if ref == "":
        with pytest.raises(StackConfigError, match=re.escape("image.repository is required")):
            run_stack("dev", {"image.repository": ""})
        return
    with pytest.raises(StackConfigError, match=re.escape("image.digestRef")):
        run_stack("dev", {"image.digestRef": ref})


def test_absolute_artifact_dir_inside_the_repo_becomes_context_relative() -> None:
    absolute = str(mocked_run.REPO_ROOT / "artifacts" / "house-price-222222222222")
    run = run_stack("dev", {"artifactDir": absolute, "modelVersion": "house-price-222222222222"})
    assert run.one("Image").inputs["build"]["args"]["MODEL_DIR"] == "artifacts/house-price-222222222222"
    with pytest.raises(ValueError, match=re.escape("outside the build context")):
        run_stack("dev", {"artifactDir": "/elsewhere/house-price-222222222222"})


def test_registry_login_uses_the_secret_password() -> None:
    run = run_stack("prod", {"image.registryUsername": "ci-bot"})
    registry = run.one("Image").inputs["registry"]
    assert is_rpc_secret(registry)  # the password makes the whole login block a secret
    assert registry["value"] == {
        "server": "registry.example.com",
        "username": "ci-bot",
        "password": SECRETS["image.registryPassword"],
    }
    assert LEAK_MARKER not in plaintext(run)


# The component on its own, asserting on its Output inside the Pulumi runtime.
def _image_args(**overrides: Any) -> ModelImageArgs:
    values: dict[str, Any] = {
        "repository": "registry.example.com/modelship",
        "model_version": "house-price-333333333333",
        "artifact_dir": "artifacts/house-price-333333333333",
        "git_revision": "abc123",
        "platform": "linux/amd64",
        "registry_server": "",
        "registry_username": "",
        "registry_password": "",
        **overrides,
    }
    return ModelImageArgs(**values)


@pytest.fixture
def mocks() -> mocked_run.Recorder:
    config, secret_keys = mocked_run.load_stack_config("dev", secrets=SECRETS)
    return mocked_run.use_mocks("dev", config, secret_keys)


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_model_image_outputs_the_pushed_digest(mocks: mocked_run.Recorder) -> Any:
    image = ModelImage("modelship-image", _image_args())

    def check(ref: str) -> None:
        assert ref.startswith("registry.example.com/modelship@sha256:")
        assert re.fullmatch(r"[0-9a-f]{64}", ref.rsplit(":", 1)[1])

    return image.ref.apply(check)


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_model_image_adopts_a_digest_without_a_build(mocks: mocked_run.Recorder) -> Any:
    image = ModelImage("modelship-image", _image_args(digest_ref=DIGEST))

    def check(ref: str) -> None:
        assert ref == DIGEST
        assert [r.type for r in mocks.captured() if r.custom] == []

    return image.ref.apply(check)


# --- database ------------------------------------------------------------------------------------


def test_external_database_takes_the_url_from_secret_config() -> None:
    run = run_stack("prod", {"db.mode": "external", "db.backup.enabled": False})
    assert run.of_kind("Cluster") == run.of_kind("Release") == run.of_kind("RandomPassword") == []
    settings = [s for s in run.of_kind("Secret") if "DATABASE_URL" in s.inputs["stringData"]["value"]]
    assert settings[0].inputs["stringData"]["value"]["DATABASE_URL"] == SECRETS["db.url"]
    assert run.exports["databaseHost"] == mocked_run.Export("db.example.com", False)
    assert run.exports["databaseUrl"].secret
    assert [p.name for p in run.of_kind("NetworkPolicy")] == ["modelship-monitoring-scrape", "modelship-ingress"]
    assert LEAK_MARKER not in plaintext(run)


def test_external_database_refuses_an_empty_url() -> None:
    config, secret_keys = mocked_run.load_stack_config("dev", {"db.mode": "external"}, {**SECRETS, "db.url": ""})
    with pytest.raises(StackConfigError, match=re.escape("db.url is not a postgresql:// URL")):
        mocked_run.run_program("dev", config, secret_keys)


def test_operator_install_can_be_skipped() -> None:
    run = run_stack("staging", {"db.installOperator": False})
    assert run.of_kind("Release") == []
    assert len(run.of_kind("Cluster")) == 1


def test_backups_through_the_barman_cloud_plugin() -> None:
    run = run_stack("staging", {**BACKUPS_ON, "db.backup.endpointUrl": "https://storage.googleapis.com"})
    spec = run.one("Cluster").inputs["spec"]
    assert "backup" not in spec, "the in-tree barmanObjectStore is deprecated since CNPG 1.26"
    (plugin,) = spec["plugins"]
    assert plugin["isWALArchiver"] is True
    store = run.one("ObjectStore").inputs
    assert plugin["parameters"] == {"barmanObjectName": store["metadata"]["name"]}
    assert store["spec"]["retentionPolicy"] == "30d"
    configuration = store["spec"]["configuration"]
    assert configuration["destinationPath"] == "s3://modelship-backups/test"
    assert configuration["endpointURL"] == "https://storage.googleapis.com"
    (creds,) = [
        s
        for s in run.of_kind("Secret")
        if s.inputs["metadata"]["name"] == configuration["s3Credentials"]["accessKeyId"]["name"]
    ]
    assert creds.inputs["stringData"]["value"] == {
        "ACCESS_KEY_ID": SECRETS["db.backup.accessKeyId"],
        "ACCESS_SECRET_KEY": SECRETS["db.backup.secretAccessKey"],
    }
    schedule = run.one("ScheduledBackup").inputs["spec"]
    assert schedule["cluster"] == {"name": run.one("Cluster").inputs["metadata"]["name"]}
    assert (schedule["method"], schedule["pluginConfiguration"]["name"]) == ("plugin", plugin["name"])
    assert schedule["immediate"] is True
    charts = {r.inputs["chart"]: r.inputs["namespace"] for r in run.of_kind("Release")}
    assert charts == {"cloudnative-pg": "cnpg-system", "plugin-barman-cloud": "cnpg-system"}
    assert LEAK_MARKER not in plaintext(run)


def test_backups_are_off_unless_enabled_and_on_in_prod(stack_run: ProgramRun) -> None:
    kinds = {r.kind for r in stack_run.resources}
    assert ("ScheduledBackup" in kinds) == ("ObjectStore" in kinds) == (stack_run.stack == "prod")
    assert "backup" not in stack_run.one("Cluster").inputs["spec"]


# --- service shape ------------------------------------------------------------------------------


def test_load_balancer_by_config() -> None:
    run = run_stack("staging", {"service.type": "LoadBalancer"})
    assert run.one("Service").inputs["spec"]["type"] == "LoadBalancer"


def test_without_hpa_pulumi_owns_replicas() -> None:
    run = run_stack("staging", {"hpa.enabled": False})
    assert run.of_kind("HorizontalPodAutoscaler") == []
    assert run.one("Deployment").ignore_changes == ()


def test_optional_requests_per_second_metric() -> None:
    run = run_stack("prod", {"hpa.rpsPerPod": 50})
    metrics = run.one("HorizontalPodAutoscaler").inputs["spec"]["metrics"]
    pods = [m["pods"] for m in metrics if m["type"] == "Pods"]
    assert pods == [
        {
            "metric": {"name": "modelship_http_requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": "50"},
        }
    ]


def test_existing_namespace_is_used_not_created() -> None:
    run = run_stack("dev", {"namespace": "team-ml"})
    assert run.of_kind("Namespace") == []
    assert {r.inputs["metadata"]["namespace"] for r in run.kubernetes_objects()} == {"team-ml"}
    assert run.exports["namespace"].value == "team-ml"


def test_auth_without_keys_fails_the_update() -> None:
    config, secret_keys = mocked_run.load_stack_config("staging", secrets={**SECRETS, "auth.apiKeys": " "})
    with pytest.raises(StackConfigError, match=re.escape("auth.apiKeys is empty")):
        mocked_run.run_program("staging", config, secret_keys)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hpa.minReplicas": 4}, "hpa.minReplicas <= service.replicas"),
        ({"pdb.minAvailable": 3}, "pdb.minAvailable must be below"),
        ({"service.type": "NodePort"}, "service.type"),
        ({"db.mode": "sqlite"}, "db.mode"),
        ({"modelVersion": ""}, "modelVersion must be set"),
        ({"image.repository": "registry.example.com/modelship:latest"}, "takes no tag"),
    ],
)
def test_impossible_configurations_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError, match=re.escape(message)):
        run_stack("prod", overrides)
