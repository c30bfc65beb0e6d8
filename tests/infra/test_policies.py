"""The CrossGuard pack (infra/policies): every stack passes every policy, and each policy catches a bad resource."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from infra.mocked_run import REPO_ROOT, ProgramRun
from infra.policies import pack, rules
from tests.infra.support import STACKS, run_stack, unwrapped

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRONJOB = "kubernetes:batch/v1:CronJob"
JOB = "kubernetes:batch/v1:Job"
RULE = {r.name: r for r in rules.RULES}


def crossguard_view(run: ProgramRun) -> list[tuple[str, dict[str, Any]]]:
    """(type, props) as the analyzer passes them: secrets unwrapped, numbers as floats stay as captured."""
    return [(r.type, unwrapped(r.inputs)) for r in run.resources if r.custom]


@pytest.mark.parametrize("stack", [*STACKS, "prod+gpu"])
@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.name)
def test_every_stack_passes_every_policy(stack: str, rule: rules.Rule, gpu_run: ProgramRun) -> None:
    run = gpu_run if stack == "prod+gpu" else run_stack(stack)
    violations = [(t, m) for t, props in crossguard_view(run) for m in rule.check(t, props)]
    assert violations == []


def test_the_policies_look_at_the_workloads_they_should(gpu_run: ProgramRun) -> None:
    """Guard against a pack that passes because it never finds a pod spec."""
    with_pods = [t for t, props in crossguard_view(gpu_run) if rules.pod_spec(t, props) is not None]
    assert with_pods == [DEPLOYMENT, CRONJOB]
    (cronjob,) = [props for t, props in crossguard_view(gpu_run) if t == CRONJOB]
    assert rules.pod_spec(CRONJOB, cronjob) is pod(cronjob, CRONJOB)


# --- deliberately bad resources ------------------------------------------------------------------


def good_deployment() -> dict[str, Any]:
    return copy.deepcopy(unwrapped(run_stack("prod").one("Deployment").inputs))


def good_cronjob() -> dict[str, Any]:
    return copy.deepcopy(unwrapped(run_stack("prod").one("CronJob").inputs))


def pod(props: dict[str, Any], resource_type: str = DEPLOYMENT) -> dict[str, Any]:
    """The pod spec, found by path here rather than by rules.pod_spec, the code under test."""
    spec: dict[str, Any] = props["spec"]
    if resource_type == CRONJOB:
        spec = spec["jobTemplate"]["spec"]
    found: dict[str, Any] = spec["template"]["spec"]
    return found


def first_container(props: dict[str, Any], resource_type: str = DEPLOYMENT) -> dict[str, Any]:
    found: dict[str, Any] = pod(props, resource_type)["containers"][0]
    return found


def image_by_tag(p: dict[str, Any]) -> None:
    first_container(p)["image"] = "registry.example.com/modelship:latest"


def privileged(p: dict[str, Any]) -> None:
    first_container(p)["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)


def root_user(p: dict[str, Any]) -> None:
    first_container(p)["securityContext"].pop("runAsNonRoot")
    pod(p)["securityContext"].pop("runAsNonRoot")


def writable_root(p: dict[str, Any]) -> None:
    first_container(p)["securityContext"]["readOnlyRootFilesystem"] = False


def no_limits(p: dict[str, Any]) -> None:
    first_container(p)["resources"].pop("limits")


def no_probes(p: dict[str, Any]) -> None:
    first_container(p).pop("readinessProbe")
    first_container(p).pop("livenessProbe")


def password_in_env(p: dict[str, Any]) -> None:
    first_container(p)["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]


def credentials_in_url(p: dict[str, Any]) -> None:
    first_container(p)["env"] = [{"name": "UPSTREAM", "value": "postgresql://app:hunter2@db:5432/app"}]


def gpu_without_toleration(p: dict[str, Any]) -> None:
    first_container(p)["resources"]["limits"]["nvidia.com/gpu"] = "1"


@pytest.mark.parametrize(
    ("rule", "break_it"),
    [
        ("images-by-digest", image_by_tag),
        ("pod-security-restricted", privileged),
        ("pod-security-restricted", root_user),
        ("pod-security-restricted", writable_root),
        ("resource-limits", no_limits),
        ("probes-present", no_probes),
        ("no-plaintext-secrets", password_in_env),
        ("no-plaintext-secrets", credentials_in_url),
        ("gpu-pods-tolerate-gpu-taint", gpu_without_toleration),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_a_bad_deployment_is_reported(rule: str, break_it: Callable[[dict[str, Any]], None]) -> None:
    props = good_deployment()
    assert RULE[rule].check(DEPLOYMENT, props) == []
    break_it(props)
    assert RULE[rule].check(DEPLOYMENT, props) != []


@pytest.mark.parametrize(
    ("rule", "break_it"),
    [
        ("images-by-digest", image_by_tag),
        ("pod-security-restricted", privileged),
        ("pod-security-restricted", root_user),
        ("pod-security-restricted", writable_root),
        ("resource-limits", no_limits),
        ("no-plaintext-secrets", password_in_env),
        ("gpu-pods-tolerate-gpu-taint", gpu_without_toleration),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_a_bad_cronjob_is_reported(rule: str, break_it: Callable[[dict[str, Any]], None]) -> None:
    """The pod template inside jobTemplate is held to the same rules as the Deployment's."""
    props = good_cronjob()
    assert RULE[rule].check(CRONJOB, props) == []
    # The breakers edit the first container of a Deployment-shaped object; hand them the job's pod.
    break_it({"spec": props["spec"]["jobTemplate"]["spec"]})
    assert RULE[rule].check(CRONJOB, props) != []


def test_probes_are_required_of_long_running_workloads_only() -> None:
    """One probe-less pod: fine as a CronJob or a Job, a violation as a Deployment or a bare Pod."""
    cronjob = good_cronjob()
    job_pod = pod(cronjob, CRONJOB)
    assert not {"readinessProbe", "livenessProbe", "startupProbe"} & set(first_container(cronjob, CRONJOB))
    check = RULE["probes-present"].check
    assert check(CRONJOB, cronjob) == []
    assert check(JOB, {"spec": {"template": {"spec": job_pod}}}) == []
    deployment = {"spec": {"selector": {}, "template": {"spec": job_pod}}}
    assert check(DEPLOYMENT, deployment) == [
        "container retention: no readinessProbe",
        "container retention: no livenessProbe",
    ]
    assert check("kubernetes:core/v1:Pod", {"spec": job_pod}) != []
    assert check("kubernetes:apps/v1:StatefulSet", deployment) != []


def test_a_gpu_pod_with_the_toleration_passes(gpu_run: ProgramRun) -> None:
    props = unwrapped(gpu_run.one("Deployment").inputs)
    assert RULE["gpu-pods-tolerate-gpu-taint"].check(DEPLOYMENT, props) == []
    pod(props).pop("tolerations")
    assert RULE["gpu-pods-tolerate-gpu-taint"].check(DEPLOYMENT, props) != []


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort"])
def test_postgres_behind_an_external_service_is_reported(service_type: str) -> None:
    check = RULE["postgres-not-exposed"].check
    by_selector = {
        "spec": {"type": service_type, "selector": {"cnpg.io/cluster": "modelship-db"}, "ports": [{"port": 80}]}
    }
    by_port = {"spec": {"type": service_type, "selector": {"app": "db"}, "ports": [{"port": 5432.0}]}}
    internal = {
        "spec": {"type": "ClusterIP", "selector": {"cnpg.io/cluster": "modelship-db"}, "ports": [{"port": 5432}]}
    }
    service = "kubernetes:core/v1:Service"
    assert check(service, by_selector) != []
    assert check(service, by_port) != []
    assert check(service, internal) == []
    cluster = {
        "spec": {"managed": {"services": {"additional": [{"serviceTemplate": {"spec": {"type": service_type}}}]}}}
    }
    assert check("kubernetes:postgresql.cnpg.io/v1:Cluster", cluster) != []


def test_the_model_service_may_be_a_load_balancer() -> None:
    run = run_stack("staging", {"service.type": "LoadBalancer"})
    (service,) = run.of_kind("Service")
    assert RULE["postgres-not-exposed"].check(service.type, unwrapped(service.inputs)) == []


def test_plaintext_secrets_outside_env_are_reported() -> None:
    check = RULE["no-plaintext-secrets"].check
    assert check("kubernetes:core/v1:ConfigMap", {"data": {"DB_PASSWORD": "hunter2"}}) != []
    assert check("kubernetes:core/v1:ConfigMap", {"data": {"MODELSHIP_API_KEYS_FILE": "/etc/keys"}}) == []
    assert check("kubernetes:core/v1:Secret", {"stringData": {"password": "changeme"}}) != []
    assert check("kubernetes:core/v1:Secret", {"stringData": {"DATABASE_URL": "postgresql://a:b@h/d"}}) == []
    assert check("docker:index/image:Image", {"build": {"args": {"NPM_TOKEN": "x"}}}) != []
    annotated = {"metadata": {"annotations": {"source": "https://user:token@git.example.com/repo"}}}
    assert check("kubernetes:core/v1:Service", annotated) != []


# --- the pack the analyzer loads -----------------------------------------------------------------


def _args(resource_type: str, props: dict[str, Any]) -> ResourceValidationArgs:
    timeouts = PolicyCustomTimeouts(create_seconds=0, update_seconds=0, delete_seconds=0)
    opts = PolicyResourceOptions(False, [], None, [], timeouts, [], None)
    return ResourceValidationArgs(resource_type, props, "urn:pulumi:test::modelship::t::n", "n", opts, None)


def test_the_pack_wires_every_rule_as_a_mandatory_policy() -> None:
    policies = pack.policies()
    assert [p.name for p in policies] == [r.name for r in rules.RULES]
    assert all(isinstance(p, ResourceValidationPolicy) for p in policies)
    assert {p.enforcement_level for p in policies} == {EnforcementLevel.MANDATORY}


def test_the_pack_reports_through_report_violation() -> None:
    props = good_deployment()
    image_by_tag(props)
    (policy,) = [p for p in pack.policies() if p.name == "images-by-digest"]
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    policy.validate(_args(DEPLOYMENT, props), report)
    assert len(reported) == 1
    assert "not pinned by digest" in reported[0][0]


def test_the_analyzer_entry_point_runs_as_a_script_from_anywhere(tmp_path: Path) -> None:
    """The analyzer runs the folder as a script, outside the repo's import path: the entry point must find
    `infra` itself and expose every rule, without serving (run_name is not __main__)."""
    entry = REPO_ROOT / "infra" / "policies" / "__main__.py"
    probe = (
        f"import runpy; ns = runpy.run_path({str(entry)!r}, run_name='analyzer_probe'); "
        "print(ns['PACK_NAME'], *[p.name for p in ns['policies']()])"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["modelship-guardrails", *[r.name for r in rules.RULES]]
    venv = yaml.safe_load((entry.parent / "PulumiPolicy.yaml").read_text())["runtime"]["options"]["virtualenv"]
    assert (entry.parent / venv / "bin" / "python").exists(), "PulumiPolicy.yaml must point at the repo's venv"
