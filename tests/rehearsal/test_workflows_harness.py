"""The rehearsal harness against real act: secrets reach a job only through its environment, protection
rules hold, every pinned action has its stand-in. (The workflows themselves: test_workflows_rehearsal.py.)"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from tests.rehearsal.act import (
    STANDINS,
    WORKFLOWS,
    Environment,
    Rehearsal,
    init_repo,
    local_repositories,
    scoped_workflow,
)

# Quick (the stand-in alone, or one act job): part of `make test`; the full flows carry the `rehearsal` marker.

ENVS = {
    "dev": Environment("dev", {"PULUMI_ACCESS_TOKEN": "tok-dev"}, ("main",)),
    "production": Environment(
        "production", {"PULUMI_ACCESS_TOKEN": "tok-prod", "MODELSHIP_API_KEY": "key-prod"}, ("main",), True
    ),
    "preview": Environment("preview", {}),
}
PR_EVENTS = ("pull_request", "pull_request_target")
REPOSITORY = {"full_name": "acme/modelship", "name": "modelship", "owner": {"login": "acme"}}

PROBE = """
name: probe
on: [push, pull_request]
jobs:
  preview:
    runs-on: ubuntu-latest
    environment: preview
    steps:
      - run: echo "token=[${{ secrets.PULUMI_ACCESS_TOKEN }}]" > "$MODELSHIP_REHEARSAL_DIR/preview.txt"
  none:
    runs-on: ubuntu-latest
    steps:
      - run: echo "token=[${{ secrets.PULUMI_ACCESS_TOKEN }}]" > "$MODELSHIP_REHEARSAL_DIR/none.txt"
  prod:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - run: echo "token=[${{ secrets.PULUMI_ACCESS_TOKEN }}]" > "$MODELSHIP_REHEARSAL_DIR/prod.txt"
"""


def probe_repo(tmp_path: Path) -> Rehearsal:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "probe.yml").write_text(textwrap.dedent(PROBE))
    init_repo(repo)
    return Rehearsal(repo, tmp_path / "state", ENVS, {})


def seen(state: Path, job: str) -> str | None:
    path = state / f"{job}.txt"
    return path.read_text().strip() if path.exists() else None


@pytest.mark.needs_engine
def test_act_gives_a_job_only_its_environments_secrets(tmp_path: Path) -> None:
    rehearsal = probe_repo(tmp_path)
    run = rehearsal.run(
        "probe.yml", "push", {"ref": "refs/heads/main", "repository": REPOSITORY}, approve={"production"}
    )
    assert run.returncode == 0, run.log.read_text()[-3000:]
    assert seen(rehearsal.state, "prod") == "token=[tok-prod]"
    assert seen(rehearsal.state, "preview") == "token=[]"
    assert seen(rehearsal.state, "none") == "token=[]"


@pytest.mark.needs_engine
def test_production_needs_an_approval_and_main(tmp_path: Path) -> None:
    rehearsal = probe_repo(tmp_path)
    run = rehearsal.run("probe.yml", "push", {"ref": "refs/heads/main", "repository": REPOSITORY})
    assert run.result("prod") == "failure" and seen(rehearsal.state, "prod") is None
    pr = {"action": "opened", "number": 7, "pull_request": {"number": 7}, "repository": REPOSITORY}
    run = rehearsal.run("probe.yml", "pull_request", pr, approve={"production"})
    assert run.result("prod") == "failure", "a pull request ref may not deploy to production"
    assert run.result("preview") == "success"


def test_no_pull_request_job_resolves_a_production_secret() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        workflow = scoped_workflow(path, ENVS, approved={"production"})
        if not set(workflow["on"]) & set(PR_EVENTS):
            continue
        for name, job in workflow["jobs"].items():
            text = json.dumps(job)
            scopes = set(re.findall(r"format\('\{0\}__\w+', ([^)]*)\)", text))
            assert scopes <= {"'preview'", "'repository'"}, f"{path.name}:{name} reads secrets of {scopes}"


def test_every_pinned_action_has_a_stand_in() -> None:
    mappings = local_repositories(WORKFLOWS.glob("*.yml"))
    assert {m.split("@")[0] for m in mappings} == set(STANDINS)
    for mapping in mappings:
        folder = Path(mapping.split("=", 1)[1])
        assert "(stand-in)" in (folder / "action.yml").read_text()


def test_a_job_sees_none_of_the_callers_make_or_pytest_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make rehearse PYTEST_ARGS=--basetemp=...` once reached ci.yml's nested `make test` through MAKEFLAGS."""
    monkeypatch.setenv("MAKEFLAGS", " -- PYTEST_ARGS=--basetemp=/tmp/outer")
    monkeypatch.setenv("MAKELEVEL", "1")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    monkeypatch.setenv("MODELSHIP_PIPELINE_API_KEY", "the caller's")
    env = Rehearsal(tmp_path, tmp_path / "state", {}, {})._process_env()
    assert not {"MAKEFLAGS", "MAKELEVEL", "PYTEST_ADDOPTS", "MODELSHIP_PIPELINE_API_KEY"} & set(env)
    assert env["MODELSHIP_REHEARSAL_DIR"] == str(tmp_path / "state") and "PATH" in env


def test_a_jobs_pytest_has_its_own_temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested pytest chmods its temp root's pytest-of-<user> to 0700; the outer run's servers live there."""
    monkeypatch.setenv("PYTEST_DEBUG_TEMPROOT", "/tmp")
    env = Rehearsal(tmp_path, tmp_path / "state", {}, {})._process_env()
    root = Path(env["PYTEST_DEBUG_TEMPROOT"])
    assert root.is_dir() and root.is_relative_to(tmp_path / "state")
