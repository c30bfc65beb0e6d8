"""The shadow's pod shape: at shadow.sample 0 nothing is rendered; above 0 the challenger's image copies its
artifact into an emptyDir that the service reads, with settings the real service accepts."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest

from infra import contract, mocked_run
from infra.components import workload
from infra.config import ServiceConfig, StackConfigError
from infra.policies import rules
from service.settings import Settings
from tests.infra.support import SECRETS, container, pod_spec, run_stack, settings_config_map
from tests.infra.test_policies import crossguard_view

IMAGE = "registry.example.com/modelship@sha256:" + "ab" * 32
ON = {contract.SHADOW_SAMPLE: "0.25", contract.SHADOW_MODEL_VERSION: "house-price-0123456789ab",
      contract.SHADOW_IMAGE_DIGEST_REF: IMAGE}  # fmt: skip


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_off_renders_nothing_of_a_shadow(stack: str) -> None:
    run = run_stack(stack)
    spec = pod_spec(run)
    assert "initContainers" not in spec or not spec["initContainers"]
    assert "shadow-model" not in json.dumps(spec)
    assert not [k for k in settings_config_map(run).inputs["data"] if k.startswith("MODELSHIP_SHADOW_")]


def test_off_renders_the_same_deployment_as_before_the_keys_existed() -> None:
    explicit = run_stack("dev", {contract.SHADOW_SAMPLE: "0", contract.SHADOW_MODEL_VERSION: "x"})
    assert pod_spec(explicit) == pod_spec(run_stack("dev"))


def test_on_copies_the_challengers_artifact_in_before_the_service_starts() -> None:
    run = run_stack("dev", ON)
    spec = pod_spec(run)
    (init,) = spec["initContainers"]
    assert init["image"] == IMAGE
    assert init["command"][:2] == ["python", "-c"] and workload.SHADOW_MODEL_DIR in init["command"][2]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "shadow-model", "emptyDir": {}} in spec["volumes"]
    mount = next(m for m in container(run)["volumeMounts"] if m["name"] == "shadow-model")
    assert mount == {"name": "shadow-model", "mountPath": workload.SHADOW_DIR, "readOnly": True}
    data = settings_config_map(run).inputs["data"]
    assert data["MODELSHIP_SHADOW_MODEL_DIR"] == workload.SHADOW_MODEL_DIR
    settings = Settings(**{k.removeprefix("MODELSHIP_").lower(): v for k, v in data.items() if "SHADOW" in k})
    assert settings.shadow_sample == 0.25  # the real service reads what infra rendered


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({contract.SHADOW_SAMPLE: "0.5"}, "shadow.sample > 0 needs shadow.image.digestRef"),
        ({**ON, contract.SHADOW_MODEL_VERSION: ""}, "needs shadow.modelVersion"),
        ({contract.SHADOW_SAMPLE: "2"}, "shadow.sample is a fraction from 0 to 1, got 2.0"),
        ({contract.SHADOW_SAMPLE: "half"}, "shadow.sample must be a number from 0 to 1, got 'half'"),
    ],
)
def test_a_shadow_that_cannot_run_fails_the_preview_naming_the_key(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(StackConfigError, match=re.escape(message)):
        run_stack("dev", overrides)


@pytest.fixture
def mocks() -> mocked_run.Recorder:
    config, secret_keys = mocked_run.load_stack_config("dev", secrets=SECRETS)
    return mocked_run.use_mocks("dev", config, secret_keys)


def _pod(shadow_image: str | None, service: ServiceConfig) -> workload.PodArgs:
    return workload.PodArgs(
        image_ref="registry.example.com/modelship@sha256:" + "cd" * 32, selector_labels={"app": "m"},
        labels={"app": "m"}, service_account="m", settings_config_map="m", settings_secret="m",
        api_keys_secret=None, config_hash="0", settings=service, gpu=None, shadow_image=shadow_image,
    )  # fmt: skip


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_the_pod_template_declares_the_copy_only_with_an_image(mocks: mocked_run.Recorder) -> Any:
    import pulumi_kubernetes as k8s

    from infra.config import stack

    service = stack.load(pulumi.Config("modelship"), "dev").service
    with_shadow = k8s.core.v1.Pod("shadowed", spec=workload.pod_template(_pod(IMAGE, service)).spec)
    without = k8s.core.v1.Pod("plain", spec=workload.pod_template(_pod(None, service)).spec)

    def check(specs: list[Any]) -> None:
        shadowed, plain = specs
        assert [c["image"] for c in shadowed["init_containers"]] == [IMAGE]
        assert not plain.get("init_containers")

    return pulumi.Output.all(with_shadow.spec, without.spec).apply(check)


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.name)
def test_a_stack_with_a_shadow_passes_every_policy(rule: rules.Rule) -> None:
    run = run_stack("prod", ON)
    assert [(t, m) for t, props in crossguard_view(run) for m in rule.check(t, props)] == []
