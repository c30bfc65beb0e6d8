"""The prediction-log retention CronJob: what every stack declares, what config changes, what it may reach."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.rpc import is_rpc_secret

from infra import config, mocked_run
from infra.components import ModelService, ModelServiceArgs
from infra.config import StackConfigError
from infra.mocked_run import ProgramRun
from service import retention as service_retention
from tests.infra.support import LEAK_MARKER, SECRETS, run_stack

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "registry.example.com/modelship@sha256:" + "cd" * 32
RETENTION_KEYS = {
    "retention.enabled": ("boolean", True),
    "retention.days": ("integer", 90),
    "retention.schedule": ("string", "17 3 * * *"),
    "retention.batch": ("integer", 5000),
}


def cronjob(run: ProgramRun) -> dict[str, Any]:
    inputs: dict[str, Any] = run.one("CronJob").inputs
    return inputs


def job_pod(run: ProgramRun) -> dict[str, Any]:
    pod: dict[str, Any] = cronjob(run)["spec"]["jobTemplate"]["spec"]["template"]
    return pod


def job_container(run: ProgramRun) -> dict[str, Any]:
    (found,) = job_pod(run)["spec"]["containers"]
    container: dict[str, Any] = found
    return container


def deployment_pod(run: ProgramRun) -> dict[str, Any]:
    pod: dict[str, Any] = run.one("Deployment").inputs["spec"]["template"]
    return pod


def test_the_keys_are_declared_as_specified() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert {k: (v["type"], v["default"]) for k, v in declared.items() if k.startswith("retention.")} == RETENTION_KEYS


# --- what every stack declares ------------------------------------------------------------------


def test_every_stack_has_the_cronjob_in_its_component(stack_run: ProgramRun) -> None:
    job = stack_run.one("CronJob")
    assert job.type == "kubernetes:batch/v1:CronJob"
    assert job.parent_type == "modelship:index:ModelService"
    assert job.name == job.inputs["metadata"]["name"] == "modelship-retention"
    assert job.inputs["metadata"]["namespace"] == stack_run.exports["namespace"].value


def test_default_schedule_and_command(stack_run: ProgramRun) -> None:
    spec = cronjob(stack_run)["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("17 3 * * *", "Etc/UTC")
    assert job_container(stack_run)["command"] == [
        "python",
        "-m",
        "service.retention",
        "--older-than-days",
        "90",
        "--batch",
        "5000",
    ]


def test_runs_one_bounded_job_at_a_time(stack_run: ProgramRun) -> None:
    spec = cronjob(stack_run)["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 24 * 3600
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["backoffLimit"] <= 6
    # a hung run ends well before the next nightly one is due
    assert 0 < job["activeDeadlineSeconds"] < 24 * 3600
    assert job_pod(stack_run)["spec"]["restartPolicy"] in ("Never", "OnFailure")


def test_runs_the_deployments_image_by_digest(stack_run: ProgramRun) -> None:
    image = job_container(stack_run)["image"]
    assert re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", image), image
    assert image == deployment_pod(stack_run)["spec"]["containers"][0]["image"] == stack_run.exports["imageRef"].value


def test_every_restricted_pod_security_field(stack_run: ProgramRun) -> None:
    pod = job_pod(stack_run)["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    ctx = job_container(stack_run)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 10001
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["readOnlyRootFilesystem"] is True


def test_only_tmp_is_writable(stack_run: ProgramRun) -> None:
    pod = job_pod(stack_run)["spec"]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    assert job_container(stack_run)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_requests_and_limits_are_set(stack_run: ProgramRun) -> None:
    resources = job_container(stack_run)["resources"]
    assert set(resources) == {"requests", "limits"}
    for section in ("requests", "limits"):
        assert set(resources[section]) == {"cpu", "memory"}, section
        assert all(resources[section].values()), section


def test_uses_the_service_account_of_the_deployment(stack_run: ProgramRun) -> None:
    account = stack_run.one("ServiceAccount").inputs
    assert job_pod(stack_run)["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert job_pod(stack_run)["spec"]["serviceAccountName"] == deployment_pod(stack_run)["spec"]["serviceAccountName"]


def test_database_url_comes_from_the_deployments_secret(stack_run: ProgramRun) -> None:
    container = job_container(stack_run)
    refs = {
        next(iter(e)): next(iter(e.values()))["name"]
        for e in deployment_pod(stack_run)["spec"]["containers"][0]["envFrom"]
    }
    assert container["env"] == [
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": refs["secretRef"], "key": "DATABASE_URL"}}}
    ]
    assert "envFrom" not in container
    (secret,) = [s for s in stack_run.of_kind("Secret") if s.inputs["metadata"]["name"] == refs["secretRef"]]
    assert is_rpc_secret(secret.inputs["stringData"])
    assert "DATABASE_URL" in secret.inputs["stringData"]["value"]


def test_job_pods_are_not_selected_as_service_pods(stack_run: ProgramRun) -> None:
    """The Service, the PDB and the spread constraints must never count a job pod as a server."""
    job_labels = job_pod(stack_run)["metadata"]["labels"].items()
    selectors = [
        stack_run.one("Service").inputs["spec"]["selector"],
        stack_run.one("Deployment").inputs["spec"]["selector"]["matchLabels"],
        *[p.inputs["spec"]["selector"]["matchLabels"] for p in stack_run.of_kind("PodDisruptionBudget")],
        *[t["labelSelector"]["matchLabels"] for t in deployment_pod(stack_run)["spec"]["topologySpreadConstraints"]],
    ]
    for selector in selectors:
        assert not selector.items() <= job_labels, selector
    assert job_labels >= {"app.kubernetes.io/part-of": "modelship", "app.kubernetes.io/component": "retention"}.items()


def test_the_job_stays_off_the_gpu_pool(gpu_run: ProgramRun) -> None:
    pod = job_pod(gpu_run)["spec"]
    assert "tolerations" not in pod
    assert "nodeSelector" not in pod
    assert "nvidia.com/gpu" not in json.dumps(job_container(gpu_run)["resources"])
    assert deployment_pod(gpu_run)["spec"]["tolerations"]  # the service itself did move to the pool


# --- config -------------------------------------------------------------------------------------


def test_schedule_days_and_batch_come_from_config() -> None:
    run = run_stack("staging", {"retention.days": 30, "retention.schedule": "0 1 * * 0", "retention.batch": 1000})
    assert cronjob(run)["spec"]["schedule"] == "0 1 * * 0"
    assert job_container(run)["command"][-4:] == ["--older-than-days", "30", "--batch", "1000"]


def test_disabled_means_no_cronjob_and_no_database_access() -> None:
    enabled, disabled = run_stack("prod"), run_stack("prod", {"retention.enabled": False})
    assert disabled.of_kind("CronJob") == []
    assert {r.name for r in enabled.resources} - {r.name for r in disabled.resources} == {"modelship-retention"}
    (policy,) = [p for p in disabled.of_kind("NetworkPolicy") if p.name == "modelship-db-ingress"]
    peers = [
        peer
        for rule in policy.inputs["spec"]["ingress"]
        if 5432 in [p["port"] for p in rule["ports"]]
        for peer in rule["from"]
    ]
    assert peers == [
        {"podSelector": {"matchLabels": disabled.one("Deployment").inputs["spec"]["selector"]["matchLabels"]}},
        {"podSelector": {"matchLabels": {"cnpg.io/cluster": "modelship-db"}}},
    ]


def test_an_external_database_is_still_pruned_without_leaking_its_url() -> None:
    run = run_stack("prod", {"db.mode": "external", "db.backup.enabled": False})
    assert job_container(run)["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL"
    assert [s for s in mocked_run.plaintext_strings(cronjob(run)) if LEAK_MARKER in s or "://" in s] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"retention.days": 0}, "retention.days must be at least 1"),
        ({"retention.batch": 0}, "retention.batch must be at least 1"),
        ({"retention.schedule": "17 3 * *"}, "retention.schedule must be five cron fields"),
        ({"retention.schedule": "TZ=Europe/Paris 17 3 * * *"}, "retention.schedule must be five cron fields"),
    ],
)
def test_impossible_retention_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError, match=re.escape(message)):
        run_stack("dev", overrides)


def test_a_macro_schedule_and_a_disabled_job_with_odd_values_are_accepted() -> None:
    assert cronjob(run_stack("dev", {"retention.schedule": "@daily"}))["spec"]["schedule"] == "@daily"
    assert run_stack("dev", {"retention.enabled": False, "retention.days": 0}).of_kind("CronJob") == []


# --- the command is the service's CLI -----------------------------------------------------------


def test_the_command_is_what_the_service_cli_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the declared argv through `python -m service.retention`'s own parser, with purge() stubbed."""
    cli = service_retention

    command = job_container(run_stack("prod", {"retention.days": 45, "retention.batch": 700}))["command"]
    assert command[:3] == ["python", "-m", "service.retention"]
    calls: list[tuple[str, float, int, float]] = []

    def purge(url: str, older_than_days: float, batch: int, pause_s: float) -> service_retention.RetentionResult:
        calls.append((url, older_than_days, batch, pause_s))
        return service_retention.RetentionResult("2024-01-01T00:00:00+00:00", 0, 0, 0.0, 0.0)

    monkeypatch.setattr(service_retention, "purge", purge)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.invalid:5432/modelship")
    assert cli.main(command[3:]) == 0
    assert calls == [("postgresql://u:p@db.invalid:5432/modelship", 45.0, 700, 0.0)]


# --- the component on its own, asserting on its outputs -----------------------------------------


@pytest.fixture
def mocked() -> tuple[config.StackConfig, mocked_run.Recorder]:
    overrides = {"retention.days": 14, "retention.schedule": "5 4 * * 1-5"}
    values, secret_keys = mocked_run.load_stack_config("dev", overrides=overrides, secrets=SECRETS)
    recorder = mocked_run.use_mocks("dev", values, secret_keys)
    return config.load(pulumi.Config(), "dev"), recorder


def _service(cfg: config.StackConfig, retention: config.RetentionConfig) -> ModelService:
    args = ModelServiceArgs(
        image_ref=DIGEST,
        model_version=cfg.image.model_version,
        settings=cfg.service,
        autoscaling=cfg.autoscaling,
        database=cfg.database,
        retention=retention,
    )
    return ModelService("modelship", args)


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_component_cronjob_outputs_follow_its_args(mocked: tuple[config.StackConfig, mocked_run.Recorder]) -> Any:
    cfg, _ = mocked
    service = _service(cfg, cfg.retention)
    assert service.retention is not None

    def check_name(name: str | None) -> None:
        assert name == "modelship-retention"

    def check_spec(spec: Any) -> None:
        assert spec.schedule == "5 4 * * 1-5"
        assert spec.concurrency_policy == "Forbid"
        (container,) = spec.job_template.spec.template.spec.containers
        assert container.image == DIGEST
        assert container.command[-4:] == ["--older-than-days", "14", "--batch", "5000"]
        assert container.env[0].value_from.secret_key_ref.key == "DATABASE_URL"

    # Applied one by one: Output.all would hand the spec over as a plain dict, not a CronJobSpec.
    job = service.retention
    return pulumi.Output.all(job.metadata.apply(lambda m: check_name(m.name)), job.spec.apply(check_spec))


def test_component_without_retention_declares_no_cronjob(
    mocked: tuple[config.StackConfig, mocked_run.Recorder],
) -> None:
    cfg, recorder = mocked
    off = config.RetentionConfig(enabled=False, days=14, schedule="5 4 * * 1-5", batch=5000)
    found: list[ModelService] = []

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def declare() -> None:
        found.append(_service(cfg, off))

    declare()  # returns once every registration has reached the mocks
    assert found[0].retention is None
    kinds = {r.kind for r in recorder.captured() if r.custom}
    assert "Deployment" in kinds
    assert "CronJob" not in kinds
