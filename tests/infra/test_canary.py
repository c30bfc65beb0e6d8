"""The canary: nothing by default; a second Deployment (no HPA, its version and track labels) behind the same
Service under the pods router; two Services and an HTTPRoute with exact weights under gateway-api, valid
against the pinned Gateway API CRD; and the configurations the program refuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pytest

from infra import config, mocked_run, render
from infra.components.canary import CanarySpec
from infra.components.service import ModelService, ModelServiceArgs
from infra.config import StackConfigError
from infra.config.canary import effective_weight, pod_count
from infra.mocked_run import Captured, ProgramRun
from tests.infra import crds
from tests.infra.support import SECRETS, STACKS, run_stack

STABLE_DIGEST = "registry.example.com/modelship@sha256:" + "ab" * 32
CANARY_DIGEST = "registry.example.com/modelship@sha256:" + "cd" * 32
CANARY_VERSION = "house-price-111111111111"
CANARY = {"canary.weight": 10, "canary.modelVersion": CANARY_VERSION, "canary.image.digestRef": CANARY_DIGEST}
GATEWAY = {**CANARY, "canary.router": "gateway-api", "canary.gateway": "infra/public", "canary.replicas": 2}
NAME = "app.kubernetes.io/name"
VERSION = "app.kubernetes.io/version"


def deployment(run: ProgramRun, name: str) -> Captured:
    (found,) = [d for d in run.of_kind("Deployment") if d.name == name]
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def pod_labels(d: Captured) -> dict[str, str]:
    labels: dict[str, str] = d.inputs["spec"]["template"]["metadata"]["labels"]
    return labels


# --- no canary: nothing more than before ---------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_no_canary_by_default(stack: str) -> None:
    run = run_stack(stack)
    assert [d.name for d in run.of_kind("Deployment")] == ["modelship-deployment"]
    assert [s.name for s in run.of_kind("Service") if s.name.startswith("modelship-canary")] == []
    assert run.of_kind("HTTPRoute") == []
    assert not [k for k in run.exports if k.startswith("canary")]
    stable = deployment(run, "modelship-deployment")
    # The selector the stacks were created with: Deployment selectors are immutable.
    assert stable.inputs["spec"]["selector"] == {
        "matchLabels": {NAME: "modelship", "app.kubernetes.io/instance": "modelship"}
    }
    assert pod_labels(stable)["track"] == "stable"


# --- router pods: the split follows ready pods ---------------------------------------------------


def test_a_canary_is_a_second_deployment_behind_the_same_service() -> None:
    run = run_stack("prod", CANARY)
    stable, canary = deployment(run, "modelship-deployment"), deployment(run, "modelship-canary-deployment")
    assert canary.parent_type == "modelship:index:ModelCanary"
    assert canary.inputs["metadata"]["name"] == "modelship-canary"
    assert pod_labels(canary)[VERSION] == CANARY_VERSION and pod_labels(canary)["track"] == "canary"
    assert pod_labels(stable)[VERSION] != CANARY_VERSION
    assert canary.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == CANARY_DIGEST
    # The stable selector is unchanged; the canary's adds the track, so neither adopts the other's pods.
    assert stable.inputs["spec"]["selector"] == run_stack("prod").one("Deployment").inputs["spec"]["selector"]
    assert canary.inputs["spec"]["selector"]["matchLabels"]["track"] == "canary"
    service = run.one("Service").inputs["spec"]["selector"]
    assert selects(service, pod_labels(stable)) and selects(service, pod_labels(canary))
    assert run.one("HorizontalPodAutoscaler").inputs["spec"]["scaleTargetRef"]["name"] == "modelship"
    assert run.exports["canaryModelVersion"].value == CANARY_VERSION


def test_the_canary_pod_differs_from_the_stable_only_where_a_canary_must() -> None:
    run = run_stack("prod", CANARY)
    stable = deployment(run, "modelship-deployment").inputs["spec"]["template"]["spec"]
    canary = deployment(run, "modelship-canary-deployment").inputs["spec"]["template"]["spec"]
    ignored = ("containers", "topologySpreadConstraints")
    assert {k: v for k, v in stable.items() if k not in ignored} == {
        k: v for k, v in canary.items() if k not in ignored
    }
    (s,), (c,) = stable["containers"], canary["containers"]
    assert {k: v for k, v in s.items() if k not in ("image", "envFrom")} == {
        k: v for k, v in c.items() if k not in ("image", "envFrom")
    }
    assert c["envFrom"][0]["configMapRef"]["name"] == "modelship-canary-settings"
    assert c["envFrom"][1] == s["envFrom"][1]  # the same database URL: both log to the stack's Postgres


def test_pods_router_derives_the_canary_pod_count_from_the_weight() -> None:
    assert deployment(run_stack("prod", CANARY), "modelship-canary-deployment").inputs["spec"]["replicas"] == 1
    assert run_stack("prod", CANARY).exports["canaryWeight"].value == 25.0  # 1 of 4 pods: 10% is too fine for 3
    run = run_stack("prod", {**CANARY, "service.replicas": 9, "hpa.minReplicas": 3})
    assert deployment(run, "modelship-canary-deployment").inputs["spec"]["replicas"] == 1
    assert run.exports["canaryWeight"].value == 10.0
    assert [pod_count(w, 3) for w in (1, 10, 20, 25, 50, 75, 90)] == [1, 1, 1, 1, 3, 9, 27]
    assert effective_weight(pod_count(50, 3), 3) == 50.0


def test_a_canary_built_from_its_artifact_uses_the_stable_build_path() -> None:
    run = run_stack("dev", {"canary.weight": 20, "canary.modelVersion": CANARY_VERSION, "canary.artifactDir": "x/c"})
    images = {i.name: i.inputs for i in run.of_kind("Image")}
    assert set(images) == {"modelship-image-build", "modelship-canary-image-build"}
    canary = images["modelship-canary-image-build"]
    assert canary["imageName"].endswith(f":{CANARY_VERSION}")
    assert canary["build"]["args"]["MODEL_DIR"] == "x/c"
    assert canary["build"]["dockerfile"] == images["modelship-image-build"]["build"]["dockerfile"]


# --- router gateway-api: exact weights ------------------------------------------------------------


def test_gateway_api_renders_two_services_and_a_weighted_route_valid_against_the_crd(tmp_path: Path) -> None:
    run = run_stack("prod", GATEWAY)
    services = {s.inputs["metadata"]["name"]: s.inputs["spec"]["selector"] for s in run.of_kind("Service")}
    stable, canary = deployment(run, "modelship-deployment"), deployment(run, "modelship-canary-deployment")
    assert selects(services["modelship"], pod_labels(stable)) and not selects(services["modelship"], pod_labels(canary))
    assert selects(services["modelship-canary"], pod_labels(canary))
    assert not selects(services["modelship-canary"], pod_labels(stable))
    assert canary.inputs["spec"]["replicas"] == 2  # canary.replicas: the route, not the pod count, splits
    route = render.to_manifest(run.one("HTTPRoute"))
    crds.validate(route)
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "infra"}
    ]
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"], r["port"]) for r in refs] == [("modelship", 90, 80), ("modelship-canary", 10, 80)]
    assert run.exports["canaryWeight"].value == 10.0
    for path in render.write_manifests(run, tmp_path):
        assert path.exists()


def test_gateway_api_without_a_canary_routes_everything_to_stable() -> None:
    run = run_stack("dev", {"canary.router": "gateway-api", "canary.gateway": "public"})
    route = render.to_manifest(run.one("HTTPRoute"))
    crds.validate(route)
    assert [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]] == [("modelship", 100)]
    assert [d.name for d in run.of_kind("Deployment")] == ["modelship-deployment"]


def test_the_crd_rejects_what_the_api_server_would() -> None:
    route = render.to_manifest(run_stack("prod", GATEWAY).one("HTTPRoute"))
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001  # the CRD's maximum is 1000000
    with pytest.raises(jsonschema.ValidationError):
        crds.validate(route)


# --- refused ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({**CANARY, "canary.weight": 101}, "canary.weight must be a percent within 0..100"),
        ({**CANARY, "canary.weight": -1}, "canary.weight must be a percent within 0..100"),
        ({**CANARY, "canary.weight": 100}, "promote instead"),
        ({**CANARY, "canary.replicas": 0}, "canary.replicas must be at least 1"),
        ({**CANARY, "canary.router": "istio"}, "canary.router must be pods or gateway-api"),
        ({**CANARY, "canary.router": "gateway-api"}, "needs canary.gateway"),
        ({**CANARY, "canary.modelVersion": ""}, "set canary.modelVersion"),
        ({**CANARY, "canary.modelVersion": "house-price-000000000000"}, "a canary needs another"),
        ({**CANARY, "canary.image.digestRef": ""}, "set canary.artifactDir or canary.image.digestRef"),
        ({**CANARY, "canary.image.digestRef": "repo:latest"}, "must look like repo@sha256"),
    ],
)
def test_bad_canary_configurations_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError, match=re.escape(message)):
        run_stack("staging", overrides)


# --- the component on its own, under the Pulumi runtime ---------------------------------------------


@pytest.fixture
def mocked() -> tuple[config.StackConfig, mocked_run.Recorder]:
    values, secret_keys = mocked_run.load_stack_config("dev", secrets=SECRETS)
    recorder = mocked_run.use_mocks("dev", values, secret_keys)
    return config.load(pulumi.Config(), "dev"), recorder


def _service(cfg: config.StackConfig, canary: CanarySpec | None, router: str = "pods") -> ModelService:
    args = ModelServiceArgs(
        image_ref=STABLE_DIGEST,
        model_version=cfg.image.model_version,
        settings=cfg.service,
        autoscaling=cfg.autoscaling,
        database=cfg.database,
        retention=cfg.retention,
        canary=canary,
        canary_weight=30 if canary else 0,
        router=router,
        gateway="public",
    )
    return ModelService("modelship", args)


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_component_canary_deployment_has_its_replicas_labels_and_no_hpa(
    mocked: tuple[config.StackConfig, mocked_run.Recorder],
) -> Any:
    cfg, recorder = mocked
    service = _service(cfg, CanarySpec(image_ref=CANARY_DIGEST, model_version=CANARY_VERSION, replicas=2))
    assert service.canary is not None and service.hpa is not None

    def check(spec: Any) -> None:
        assert spec.replicas == 2
        assert spec.selector.match_labels["track"] == "canary"
        labels = spec.template.metadata.labels
        assert labels[VERSION] == CANARY_VERSION and labels["track"] == "canary"
        assert spec.template.spec.containers[0].image == CANARY_DIGEST
        hpas = [r for r in recorder.captured() if r.kind == "HorizontalPodAutoscaler"]
        assert [h.inputs["spec"]["scaleTargetRef"]["name"] for h in hpas] == ["modelship"]

    # The HPA registers once the stable Deployment resolves: wait for its URN before reading the capture.
    deployment = service.canary.deployment
    return service.hpa.urn.apply(lambda _: deployment.spec.apply(check))


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_component_gateway_route_weighs_stable_and_canary(
    mocked: tuple[config.StackConfig, mocked_run.Recorder],
) -> Any:
    cfg, recorder = mocked
    service = _service(cfg, CanarySpec(CANARY_DIGEST, CANARY_VERSION, 1), router="gateway-api")
    assert service.canary is not None and service.canary.service is not None and service.route is not None

    def check(selector: Any) -> None:
        assert selector["track"] == "canary"
        (route,) = [r for r in recorder.captured() if r.kind == "HTTPRoute"]
        refs = route.inputs["spec"]["rules"][0]["backendRefs"]
        assert [(r["name"], r["weight"]) for r in refs] == [("modelship", 70), ("modelship-canary", 30)]

    canary_selector = service.canary.service.spec.apply(lambda spec: spec.selector)
    return pulumi.Output.all(canary_selector, service.route.urn).apply(lambda both: check(both[0]))
