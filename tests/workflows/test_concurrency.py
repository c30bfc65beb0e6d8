"""No queued deploy or rollback can be dropped by another workflow's job: GitHub's one-pending-job rule.

GitHub runs one job per concurrency group and keeps at most ONE pending: when another job queues in the
group, the pending one is cancelled, whatever `cancel-in-progress` says. So two workflows that can both
queue work on one stack must never share a group, and nothing that changes a stack may cancel in progress.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.workflows.test_credentials import input_choices
from tests.workflows.test_workflows import WORKFLOWS, jobs, load

STACKS = ["dev", "staging", "prod", "pr-7"]
CHANGES_A_STACK = re.compile(r"pipelines (deploy|release|promote|rollback|destroy)\b")


def groups(path: Path) -> list[tuple[str, dict[str, Any], bool]]:
    """(job, its effective concurrency, whether it changes a stack) for every job of a workflow."""
    workflow = load(path)
    found = []
    for name, job in jobs(path).items():
        concurrency = job.get("concurrency", workflow.get("concurrency"))
        changes = any(CHANGES_A_STACK.search(step.get("run", "")) for step in job["steps"])
        if concurrency is not None:
            found.append((name, concurrency if isinstance(concurrency, dict) else {"group": concurrency}, changes))
    return found


def expand(group: str, path: Path) -> set[str]:
    """Every concrete group name the template can take, for every stack and input choice."""
    values = set()
    for value in [*STACKS, *input_choices(path), "main"]:
        number = value.removeprefix("pr-") if value.startswith("pr-") else "0"
        text = re.sub(r"\$\{\{\s*github\.event\.pull_request\.number\s*\}\}", number, group)
        text = re.sub(r"\$\{\{\s*github\.run_id\s*\}\}", f"RUN-{path.name}", text)
        text = re.sub(r"\$\{\{\s*github\.ref\s*\}\}", f"refs/heads/{value}", text)
        text = re.sub(r"\$\{\{[^}]*\}\}", value, text)
        values.add(text)
    return values


def test_workflows_that_queue_on_stacks_never_share_a_group() -> None:
    owners: dict[str, str] = {}
    for path in WORKFLOWS:
        for job, concurrency, _ in groups(path):
            for group in expand(str(concurrency["group"]), path):
                other = owners.setdefault(group, path.name)
                assert other == path.name, f"{path.name}:{job} and {other} share concurrency group {group}"


def test_nothing_that_changes_a_stack_cancels_in_progress() -> None:
    for path in WORKFLOWS:
        for job, concurrency, changes in groups(path):
            if changes:
                assert concurrency.get("cancel-in-progress") is False, f"{path.name}:{job}"


def test_a_rollback_is_never_pending_behind_another_rollback() -> None:
    # Per-run group: a second rollback cannot cancel a queued first one; Pulumi's stack lock orders them.
    group = load(WORKFLOWS[0].parent / "rollback.yml")["concurrency"]["group"]
    assert "github.run_id" in group


def test_every_job_that_changes_a_stack_is_in_a_group() -> None:
    for path in WORKFLOWS:
        grouped = {job for job, _, _ in groups(path)}
        for name, job in jobs(path).items():
            if any(CHANGES_A_STACK.search(step.get("run", "")) for step in job["steps"]):
                assert name in grouped, f"{path.name}:{name} changes a stack outside any concurrency group"


def test_the_rule_is_explained_where_the_groups_are_declared() -> None:
    for name in ("deploy.yml", "rollback.yml", "loadtest.yml", "pr-environment.yml"):
        text = (WORKFLOWS[0].parent / name).read_text()
        assert "ONE pending job per" in text, f"{name} does not explain GitHub's one-pending-job rule"
