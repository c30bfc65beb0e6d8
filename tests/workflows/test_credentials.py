"""Deploy credentials are scoped to GitHub environments, handed to steps, and out of reach of pull requests.

GitHub gives a job the secrets of the environment it declares (plus repository secrets, of which modelship
has none) and GITHUB_TOKEN. These tests read the workflows as GitHub would: which environments a job can
resolve to, which secrets its steps reference, and which events can start it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflows.test_workflows import ROOT, WORKFLOWS, jobs, load

SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
DEPLOY_SECRETS = {"PULUMI_ACCESS_TOKEN", "MODELSHIP_API_KEY"}
ENVIRONMENTS = {"dev", "staging", "production", "preview"}
STACK_ENVIRONMENT = {"dev": "dev", "staging": "staging", "prod": "production"}
PR_EVENTS = {"pull_request", "pull_request_target"}


def secrets_in(value: Any) -> set[str]:
    return set(SECRET.findall(yaml.safe_dump(value))) - {"GITHUB_TOKEN"}


def input_choices(path: Path, names: set[str] | None = None) -> list[str]:
    """The options of the dispatch inputs NAMES (every input when None)."""
    inputs = (load(path)["on"].get("workflow_dispatch") or {}).get("inputs", {})
    return [str(o) for n, spec in inputs.items() if names is None or n in names for o in spec.get("options", [])]


def resolve(expression: str, choices: list[str]) -> set[str]:
    """Values an expression like `inputs.x == 'prod' && 'production' || inputs.x || 'staging'` can take."""
    if "${{" not in expression:
        return {expression}
    values = set()
    for choice in choices or [""]:
        mapped = re.search(rf"'{choice}'\s*&&\s*'([\w-]+)'", expression) if choice else None
        values.add(mapped.group(1) if mapped else choice)
    values |= {d for d in re.findall(r"\|\|\s*'([\w-]+)'\s*\}\}", expression)}
    values.discard("")
    return values


def possible_environments(path: Path, job: dict[str, Any]) -> set[str]:
    """Every environment name the job's `environment:` can resolve to."""
    environment = job.get("environment")
    if environment is None:
        return set()
    name = str(environment["name"] if isinstance(environment, dict) else environment)
    return resolve(name, input_choices(path, set(re.findall(r"inputs\.(\w+)", name))))


def triggers(path: Path) -> set[str]:
    on = load(path)["on"]
    return set(on) if isinstance(on, dict) else set(on if isinstance(on, list) else [on])


def all_jobs() -> list[tuple[Path, str, dict[str, Any]]]:
    return [(path, name, job) for path in WORKFLOWS for name, job in jobs(path).items()]


def test_no_workflow_level_env_reads_a_secret() -> None:
    for path in WORKFLOWS:
        assert not secrets_in(load(path).get("env", {})), f"{path.name}: a secret in workflow-level env"


@pytest.mark.parametrize(("path", "name", "job"), all_jobs(), ids=[f"{p.name}:{n}" for p, n, _ in all_jobs()])
def test_a_job_that_reads_a_secret_declares_its_environment(path: Path, name: str, job: dict[str, Any]) -> None:
    used = secrets_in(job)
    if used:
        assert possible_environments(path, job) <= ENVIRONMENTS and possible_environments(path, job), (
            f"{path.name}:{name} reads {sorted(used)} without an environment: that needs a repository secret"
        )


@pytest.mark.parametrize(("path", "name", "job"), all_jobs(), ids=[f"{p.name}:{n}" for p, n, _ in all_jobs()])
def test_secrets_go_to_steps_not_to_the_whole_job(path: Path, name: str, job: dict[str, Any]) -> None:
    assert not secrets_in(job.get("env", {})), f"{path.name}:{name}: job-level env exposes a secret to every step"
    for step in job["steps"]:
        if "uses" in step and not step["uses"].startswith("pulumi/"):
            # setup-python, artifacts, docker: third-party code that has no use for a deploy credential
            assert not secrets_in(step), f"{path.name}:{name}: {step['uses']} is given {secrets_in(step)}"


def pr_jobs() -> list[tuple[Path, str, dict[str, Any]]]:
    return [(p, n, j) for p, n, j in all_jobs() if triggers(p) & PR_EVENTS]


def test_pull_request_jobs_cannot_reach_a_deploy_environment_or_secret() -> None:
    assert pr_jobs(), "ci.yml and pr-environment.yml run on pull requests"
    for path, name, job in pr_jobs():
        where = f"{path.name}:{name}"
        assert possible_environments(path, job) <= {"preview"}, f"{where} can run as {possible_environments(path, job)}"
        assert not secrets_in(job) & DEPLOY_SECRETS, f"{where} reads {secrets_in(job) & DEPLOY_SECRETS}"


def test_pull_request_jobs_with_credentials_skip_forks() -> None:
    for path, name, job in pr_jobs():
        permissions = job.get("permissions", {})
        if job.get("environment") or permissions.get("id-token") == "write":
            assert "github.event.pull_request.head.repo.full_name == github.repository" in job.get("if", ""), (
                f"{path.name}:{name} would run for a fork's pull request"
            )


def test_pr_jobs_log_in_to_pulumi_through_oidc_scoped_to_the_pr_team() -> None:
    for path, name, job in pr_jobs():
        uses_pulumi = any(s.get("uses", "").startswith("pulumi/actions@") for s in job["steps"])
        runs_pipelines = any("--target pulumi" in s.get("run", "") for s in job["steps"])
        if not (uses_pulumi or runs_pipelines):
            continue
        auth = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/auth-actions@")]
        assert len(auth) == 1, f"{path.name}:{name} touches Pulumi without pulumi/auth-actions"
        assert auth[0]["with"]["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
        assert auth[0]["with"]["scope"] == "team:${{ vars.PULUMI_PR_TEAM }}"
        assert auth[0]["with"]["export-environment-variables"] is False, "the token goes to named steps only"


def test_deploy_jobs_run_as_their_stacks_environment() -> None:
    deploy = jobs(ROOT / ".github/workflows/deploy.yml")
    for stack, environment in STACK_ENVIRONMENT.items():
        assert deploy[stack]["environment"] == environment
    path = ROOT / ".github/workflows/rollback.yml"
    assert possible_environments(path, jobs(path)["rollback"]) == {"dev", "staging", "production"}
    path = ROOT / ".github/workflows/loadtest.yml"
    assert possible_environments(path, jobs(path)["loadtest"]) == {"dev", "staging", "production"}


def auth_required(stack: str) -> bool:
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():  # pr-<n>: no stack file, Pulumi.yaml's default
        return False
    config = yaml.safe_load(path.read_text())["config"]
    return bool(config.get("modelship:auth.required", False))


VERIFIES = re.compile(r"pipelines (smoke|loadcheck|rollback|release|promote)\b")


def target_stacks(path: Path, job: dict[str, Any], step: dict[str, Any]) -> set[str]:
    """The stacks a pipelines call in this step can act on (`--stack X`, `--to X`, or `$STACK`)."""
    run = step["run"]
    stacks = set(re.findall(r"--(?:stack|to) ([\w-]+)", run))
    if re.search(r"--stack \"?\$STACK", run):
        env = {**load(path).get("env", {}), **job.get("env", {}), **step.get("env", {})}
        stacks |= resolve(str(env["STACK"]), input_choices(path))
    return {s for s in stacks if not s.startswith("pr-")} | (
        {"pr"} if any(s.startswith("pr-") for s in stacks) else set()
    )


def verifying_steps() -> list[tuple[str, Path, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for path, name, job in all_jobs():
        for step in job["steps"]:
            if VERIFIES.search(step.get("run", "")) and "--target pulumi" in step["run"]:
                for stack in target_stacks(path, job, step):
                    found.append((f"{path.name}:{name}:{step.get('name', '')}", path, stack, job, step))
    return found


def test_every_step_that_verifies_an_auth_stack_gets_that_environments_api_key() -> None:
    checked = [entry for entry in verifying_steps() if auth_required(entry[2])]
    assert {entry[2] for entry in checked} == {"staging", "prod"}, "staging and prod require API keys"
    for where, path, stack, job, step in checked:
        environments = possible_environments(path, job)
        assert STACK_ENVIRONMENT[stack] in environments, f"{where} acts on {stack} outside {STACK_ENVIRONMENT[stack]}"
        env = step.get("env", {})
        assert env.get("MODELSHIP_PIPELINE_API_KEY") == "${{ secrets.MODELSHIP_API_KEY }}", (
            f"{where} verifies {stack} (auth.required) without its environment's API key"
        )
