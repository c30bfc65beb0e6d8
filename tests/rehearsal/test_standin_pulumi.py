"""The stand-in `pulumi`, driven by the real pulumi.automation SDK (unpatched), behaves as the real CLI's source
says."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pulumi import automation as auto

from infra import contract
from tests.rehearsal.standin_pulumi import merge
from tests.rehearsal.standin_pulumi.state import StackState, StandinError

# Quick (the stand-in alone, or one act job): part of `make test`; the full flows carry the `rehearsal` marker.

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def on_path(standin: dict[str, str]) -> Iterator[dict[str, str]]:
    """The stand-in env in this process, where the SDK reads it (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in standin}
    os.environ.update(standin)
    yield standin
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def scratch_project(folder: Path, config: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text(f"name: scratch\nruntime: python\nconfig:\n{config}")
    return folder


def test_the_sdk_accepts_its_version_and_it_names_itself(on_path: dict[str, str]) -> None:
    workspace = auto.LocalWorkspace(work_dir=str(ROOT))
    assert "standin" in workspace.pulumi_version
    shown = subprocess.run(["pulumi", "--help"], capture_output=True, text=True, env=os.environ, check=True)
    assert "stand-in" in shown.stdout


def test_anything_else_is_not_implemented(on_path: dict[str, str]) -> None:
    done = subprocess.run(["pulumi", "whoami"], capture_output=True, text=True, env=os.environ, cwd=ROOT)
    assert done.returncode != 0 and "not implemented by the stand-in" in done.stderr


@pytest.mark.needs_engine
def test_stack_lifecycle(on_path: dict[str, str], tmp_path: Path) -> None:
    work = scratch_project(tmp_path / "p", "  name.first:\n    type: string\n    default: x\n")
    stack = auto.create_stack("lifecycle", work_dir=str(work))
    with pytest.raises(auto.StackAlreadyExistsError):
        auto.create_stack("lifecycle", work_dir=str(work))
    with pytest.raises(auto.StackNotFoundError):
        auto.select_stack("nowhere", work_dir=str(work))
    assert [s.name for s in stack.workspace.list_stacks()] == ["lifecycle"]
    stack.set_all_config(
        {"scratch:token": auto.ConfigValue("s3cret", secret=True), "scratch:plain": auto.ConfigValue("p")}
    )
    config = stack.get_all_config()
    assert config["scratch:token"].secret and config["scratch:token"].value == "s3cret"
    assert stack.get_config("plain").value == "p"
    stack.set_tag("modelship:u1:smoke", "pass")
    assert stack.list_tags()["modelship:u1:smoke"] == "pass"
    stack.workspace.remove_stack("lifecycle")
    assert stack.workspace.list_stacks() == []


@pytest.mark.needs_engine
def test_a_locked_stack_refuses_up_as_a_concurrent_update(on_path: dict[str, str], tmp_path: Path) -> None:
    work = scratch_project(tmp_path / "p", "  name:\n    type: string\n    default: x\n")
    stack = auto.create_stack("busy", work_dir=str(work))
    StackState("scratch", "busy", Path(on_path["PULUMI_BACKEND_URL"][len("file://") :]) / ".pulumi").lock()
    with pytest.raises(auto.ConcurrentUpdateError):
        stack.up()  # another update holds the lock (pkg/backend/diy/lock.go)
    stack.cancel()
    with pytest.raises(auto.CommandError, match="missing configuration value 'needed'") as caught:
        (work / "Pulumi.yaml").write_text("name: scratch\nruntime: python\nconfig:\n  needed:\n    type: string\n")
        stack.up()
    assert not isinstance(caught.value, auto.ConcurrentUpdateError)  # cancel removed the lock
    assert stack.history() == []  # a config error stops before the update starts


@pytest.mark.needs_engine
def test_a_stack_value_of_the_wrong_type_fails(on_path: dict[str, str], tmp_path: Path) -> None:
    work = scratch_project(tmp_path / "p", "  count:\n    type: integer\n    default: 1\n")
    stack = auto.create_stack("typed", work_dir=str(work))
    stack.set_config("count", auto.ConfigValue("many"))
    with pytest.raises(auto.CommandError, match="configuration key 'count' must be of type 'integer'"):
        stack.preview()


def test_merge_keeps_a_flat_dotted_value_beside_the_default_object() -> None:
    """config.go mergeConfig + map.go Get(path=true): the flat value is not found, so the default is written by
    path and type-checked instead; the flat value escapes the check (ENGINES.md)."""
    project = {"name": "p", "config": {"a.b": {"type": "integer", "default": 1}}}
    merged = merge.merge(project, "s", {"p:a.b": merge.plain("not-a-number")})
    assert merged["p:a.b"]["value"] == "not-a-number"
    assert merged["p:a"] == {"value": '{"b": "1"}', "secret": False, "object": True}
    with pytest.raises(StandinError, match=r"'a\.b' must be of type 'integer'"):
        merge.merge(project, "s", {"p:a": merge.plain({"b": "x"})})


def test_merge_names_every_missing_key_and_accepts_undeclared_ones() -> None:
    project = {"name": "p", "config": {"one": {"type": "string"}, "two": {"type": "string"}}}
    with pytest.raises(StandinError, match="Stack 's' is missing configuration values 'one' and 'two'"):
        merge.merge(project, "s", {"p:model.version": merge.plain("v")})
    given = {"p:one": merge.plain("1"), "p:two": merge.plain("2"), "p:x.y": merge.plain("z")}
    merged = merge.merge(project, "s", given)
    assert merged["p:x.y"]["value"] == "z"


@pytest.mark.needs_engine
def test_a_mandatory_policy_violation_fails_the_update(on_path: dict[str, str], tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (pack / "__main__.py").write_text(
        "from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy\n"
        "def no_deployments(args, report):\n"
        "    if args.resource_type == 'kubernetes:apps/v1:Deployment':\n"
        "        report('no Deployments today')\n"
        "PolicyPack('refuse-all', [ResourceValidationPolicy(name='no-deployments', description='d',\n"
        "    validate=no_deployments, enforcement_level=EnforcementLevel.MANDATORY)])\n"
    )
    stack = auto.create_or_select_stack("policy", work_dir=str(ROOT))
    stack.set_all_config(
        {
            "modelship:modelVersion": auto.ConfigValue("house-price-000000000001"),
            "modelship:image.digestRef": auto.ConfigValue("r.invalid/m@sha256:" + "ef" * 32),
        }
    )
    with pytest.raises(auto.CommandError, match="no Deployments today"):
        stack.up(policy_packs=[str(pack)])
    (failed,) = stack.history()
    assert failed.result == "failed"
    assert stack.outputs() == {}  # nothing was applied
    state = StackState("modelship", "policy", Path(on_path["PULUMI_BACKEND_URL"][len("file://") :]) / ".pulumi")
    assert not list(state.run_dir.glob("*.pid"))


@pytest.mark.needs_engine
def test_a_preview_needs_no_environment_secret_but_up_refuses_without_it(on_path: dict[str, str]) -> None:
    """ci.yml previews staging from a pull request, which holds no staging secret; the deploy job stores
    auth.apiKeys before `up` (issue 9: the preview used to fail on every PR)."""
    stack = auto.create_or_select_stack("staging", work_dir=str(ROOT))
    stack.set_all_config(
        {
            "modelship:modelVersion": auto.ConfigValue("house-price-000000000002"),
            "modelship:image.digestRef": auto.ConfigValue("r.invalid/m@sha256:" + "ab" * 32),
        }
    )
    preview = stack.preview(policy_packs=[str(ROOT / "infra" / "policies")])
    assert "modelship-guardrails: " in preview.stdout and "0 mandatory violation(s)" in preview.stdout
    with pytest.raises(auto.CommandError, match=r"auth\.required is true but auth\.apiKeys is empty"):
        stack.up()
    assert [u.result for u in stack.history()] == ["failed"]


@pytest.mark.needs_engine
def test_a_shadow_images_init_container_copies_its_model_in_before_the_service_starts(
    on_path: dict[str, str], house_artifact: Path, artifacts_dir: Path
) -> None:
    """shadow.sample > 0 renders an initContainer from the challenger's image (infra/components/workload.py);
    the stand-in runs it as a kubelet would, so the service starts with the challenger beside its model."""
    from model.manifest import Manifest
    from model.train import train
    from tests.rehearsal.standin_env import record_image

    challenger = train("house-price", artifacts_dir / "standin-shadow", seed=5).path
    version = Manifest.load(challenger / "manifest.json").version
    stack = auto.create_or_select_stack("dev", work_dir=str(ROOT))
    stack.set_all_config(
        {
            "modelship:modelVersion": auto.ConfigValue(Manifest.load(house_artifact / "manifest.json").version),
            "modelship:image.digestRef": auto.ConfigValue(record_image(on_path, house_artifact)),
            f"modelship:{contract.SHADOW_SAMPLE}": auto.ConfigValue("1"),
            f"modelship:{contract.SHADOW_IMAGE_DIGEST_REF}": auto.ConfigValue(record_image(on_path, challenger)),
            f"modelship:{contract.SHADOW_MODEL_VERSION}": auto.ConfigValue(version),
        }
    )
    try:
        url = stack.up().outputs[contract.OUTPUT_URL].value
        answered = httpx.post(f"{url}/predict", json={"size": 1500.0, "bedrooms": 3, "age": 10}, timeout=10)
        assert answered.status_code == 200, answered.text
        deadline = time.monotonic() + 15
        while 'modelship_shadow_copies_total{outcome="scored"} 1.0' not in httpx.get(f"{url}/metrics").text:
            assert time.monotonic() < deadline, "the challenger the init container copied in never scored the copy"
            time.sleep(0.2)
    finally:
        stack.destroy()
        stack.workspace.remove_stack("dev")


@pytest.mark.needs_engine
def test_a_canary_deployment_joins_the_service_by_its_ready_pods_and_leaves_it(
    on_path: dict[str, str], house_artifact: Path, artifacts_dir: Path
) -> None:
    """canary.weight > 0 renders a second Deployment behind the same Service (infra/components/canary.py); the
    stand-in runs a process per Deployment behind a real HAProxy weighted by each one's replicas, and writes the
    PodMonitor's targets with each pod's version label for a real Prometheus. Weight 0 drains the canary away."""
    import json

    from model.manifest import Manifest
    from model.train import train
    from tests.pipelines.canary_traffic import versions
    from tests.rehearsal.standin_env import record_image

    stable = Manifest.load(house_artifact / "manifest.json").version
    candidate = train("house-price", artifacts_dir / "standin-canary", seed=9).path
    canary = Manifest.load(candidate / "manifest.json").version
    stack = auto.create_or_select_stack("dev", work_dir=str(ROOT))
    stack.set_all_config(
        {
            "modelship:modelVersion": auto.ConfigValue(stable),
            "modelship:image.digestRef": auto.ConfigValue(record_image(on_path, house_artifact)),
            "modelship:service.replicas": auto.ConfigValue("3"),
            "modelship:monitoring.enabled": auto.ConfigValue("true"),
            f"modelship:{contract.CANARY_WEIGHT}": auto.ConfigValue("25"),  # 1 canary pod next to 3
            f"modelship:{contract.CANARY_IMAGE_DIGEST_REF}": auto.ConfigValue(record_image(on_path, candidate)),
            f"modelship:{contract.CANARY_MODEL_VERSION}": auto.ConfigValue(canary),
        }
    )
    try:
        url = stack.up().outputs[contract.OUTPUT_URL].value
        split = versions(url, 200)
        assert set(split) == {stable, canary} and 25 <= split[canary] <= 80, split  # 1 of 4 pods: 50 expected
        (targets,) = Path(on_path["MODELSHIP_REHEARSAL_DIR"], "prometheus").glob("*-dev.json")
        labelled = {g["labels"]["app_kubernetes_io_version"]: g for g in json.loads(targets.read_text())}
        assert set(labelled) == {stable, canary} and labelled[canary]["labels"]["__metrics_path__"] == "/metrics"
        scraped = httpx.get(f"http://{labelled[canary]['targets'][0]}/model", timeout=10).json()
        assert scraped["version"] == canary, "each target is the pod of its version"
        stack.set_config(f"modelship:{contract.CANARY_WEIGHT}", auto.ConfigValue("0"))
        url_after = stack.up().outputs[contract.OUTPUT_URL].value
        assert url_after == url, "the Service keeps its address across rollouts"
        assert set(versions(url, 40)) == {stable}
        assert [g["labels"]["app_kubernetes_io_version"] for g in json.loads(targets.read_text())] == [stable]
    finally:
        stack.destroy()
        stack.workspace.remove_stack("dev")
