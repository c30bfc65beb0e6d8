"""The dress rehearsal: the real workflows, run by act, through the pipelines and the Automation API into
the stand-in Pulumi CLI, which runs the real infra program and starts the real service per stack.

One session-scoped rehearsal, in order: a push to main (deploy.yml; prod through a canary, promoted), a push of
a broken model, a pull request opened (ci.yml and pr-environment.yml) and closed, a load test of staging, a shadow
on staging (shadow.yml: start, users' requests, report, stop), a push of a model whose feature pipeline changed
(it passes the gate, dev and staging, and prod's canary aborts it), and a rollback of prod.

Prod's users are Locust's LiveUser (loadtest/live.py) through the stand-in's Service (HAProxy) during every
deploy run; prod's canary counts each version's 5xx in a real Prometheus that scrapes the pods the stand-in's
PodMonitor names, and reads the answers from prod's log (PROD_LOG_DATABASE_URL), as deploy.yml says.

Environment secrets: each environment's values exist only in its own scope (see tests/rehearsal/act.py);
`production` needs an approval, modelled as the rehearsal approving it for the deploy and rollback runs.
The API key of staging and prod is the one their `auth.apiKeys` config holds.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pipelines.canary_traffic import live_users
from tests.rehearsal.act import OWNER_REPO, Environment, Rehearsal, Run, commit, snapshot_repo
from tests.rehearsal.actions.standin import artifact_digest

pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
STANDIN_CLI = ROOT / "tests" / "rehearsal" / "standin_pulumi" / "bin" / "pulumi"
REPOSITORY = {"full_name": OWNER_REPO, "name": "modelship", "owner": {"login": "acme"}}
PR = 7
ORG = "organization"  # vars.PULUMI_ORG; a file:// backend knows only this organization
STACKS = ("dev", "staging", "prod")
# The rehearsal narrows ci.yml's `make test` to these (vars.CI_PYTEST_ARGS); the full suite is CI's.
CI_TESTS = "tests/workflows/test_workflows.py -q -p no:cacheprovider"


def environments() -> dict[str, Environment]:
    def token() -> str:
        return secrets.token_hex(8)

    def keyed(name: str) -> dict[str, str]:
        # The key the pipelines send, and the keys file (`<key-id> <scopes> <secret>`) stored as auth.apiKeys.
        key = f"{name}-{token()}"
        return {
            "PULUMI_ACCESS_TOKEN": f"{name}-{token()}",
            "MODELSHIP_API_KEY": key,
            "MODELSHIP_API_KEYS": f"ci predict,read,synthetic {key}",
        }

    return {
        "dev": Environment("dev", {"PULUMI_ACCESS_TOKEN": f"dev-{token()}"}, ("main",)),
        "staging": Environment("staging", keyed("staging"), ("main",)),
        "production": Environment("production", keyed("prod"), ("main",), reviewers=True),
        "preview": Environment("preview", {}),  # PR jobs: Pulumi through OIDC, no stored secret
    }


def standin_env(state: Path) -> dict[str, str]:
    """The process env the stand-in Pulumi CLI needs (its helper owns the details)."""
    module = importlib.import_module("tests.rehearsal.standin_env")
    env: dict[str, str] = module.standin_env(state)
    return env


def push(sha: str) -> dict[str, Any]:
    return {"ref": "refs/heads/main", "after": sha, "repository": REPOSITORY}


def pull_request(action: str, sha: str) -> dict[str, Any]:
    head = {"sha": sha, "ref": "feature", "repo": REPOSITORY}
    return {
        "action": action,
        "number": PR,
        "pull_request": {"number": PR, "head": head, "base": {"ref": "main", "repo": REPOSITORY}},
        "repository": REPOSITORY,
    }


class Stage:
    """The rehearsal's world after its runs, and how to look at it."""

    def __init__(self, rehearsal: Rehearsal, envs: dict[str, Environment]) -> None:
        self.rehearsal = rehearsal
        self.envs = envs
        self.runs: dict[str, Run] = {}
        self.served: dict[str, dict[str, str]] = {}  # run key -> {stack: version it serves after that run}
        self.named: dict[str, dict[str, dict[str, Any]]] = {}  # run key -> {stack: its outputs after that run}
        self.seeded = ""  # the version prod served before the rehearsal's first push
        self.users: dict[str, dict[str, int]] = {}  # run key -> prod's live users' requests and failures

    def after(self, key: str, run: Run) -> None:
        """Keep the run and what every stack serves right after it (for the summary)."""
        self.runs[key] = run
        seen, named = {}, {}
        for stack in (*STACKS, f"pr-{PR}"):
            try:
                named[stack] = self.outputs(stack)
                seen[stack] = self.version_at(named[stack]["serviceUrl"], stack)
            except (AssertionError, KeyError, httpx.HTTPError, ValueError):
                seen[stack] = "-"  # no such stack, or it does not answer
        self.served[key], self.named[key] = seen, named

    def summary(self) -> str:
        def serves(key: str) -> str:
            return " ".join(f"{stack}={version}" for stack, version in self.served.get(key, {}).items())

        return "\n\n".join(f"{run.table()}\n  serves: {serves(key)}" for key, run in self.runs.items())

    def pipelines(self, *args: str, stack: str | None) -> subprocess.CompletedProcess[str]:
        env = {**self.rehearsal._process_env(), "MODELSHIP_PIPELINE_PULUMI_ORG": ORG}
        environment = self.envs.get({"prod": "production"}.get(stack or "", stack or ""))
        for secret, setting in (("MODELSHIP_API_KEY", "API_KEY"), ("MODELSHIP_API_KEYS", "API_KEYS")):
            if environment and secret in environment.secrets:
                env[f"MODELSHIP_PIPELINE_{setting}"] = environment.secrets[secret]
        where = ["--stack", stack, "--target", "pulumi"] if stack else []
        return subprocess.run(
            [sys.executable, "-m", "pipelines", *args, *where],
            cwd=self.rehearsal.repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def api_key(self, stack: str) -> str:
        environment = self.envs.get({"prod": "production"}.get(stack, stack))
        return environment.secrets.get("MODELSHIP_API_KEY", "") if environment else ""

    def outputs(self, stack: str) -> dict[str, Any]:
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", f"{ORG}/{stack}"],
            cwd=self.rehearsal.repo,
            env=self.rehearsal._process_env()
            | {"PATH": f"{STANDIN_CLI.parent}:{self.rehearsal._process_env()['PATH']}"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs: dict[str, Any] = json.loads(result.stdout)
        return outputs

    def served_version(self, stack: str) -> str:
        return self.version_at(self.outputs(stack)["serviceUrl"], stack)

    def version_at(self, url: str, stack: str) -> str:
        key = self.api_key(stack)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.get(f"{url}/model", headers=headers, timeout=10)
        response.raise_for_status()
        return str(response.json()["version"])


def seed(stage: Stage, env: dict[str, str]) -> str:
    """What prod serves before the rehearsed merge: an older model (alpha=1.0), deployed the way README's
    "First deploy" does it, without a workflow, so that a rollback of prod has somewhere to go. dev and
    staging start empty: their first update is the workflow's. Returns the older version."""
    out = stage.rehearsal.state / "seed-artifacts"
    trained = stage.pipelines("train", "--recipe", "house-price", "--set", "alpha=1.0", "--out", str(out), stack=None)
    assert trained.returncode == 0, trained.stderr
    values = dict(line.split("=", 1) for line in trained.stdout.splitlines() if "=" in line)
    standin = importlib.import_module("tests.rehearsal.standin_env")
    image = standin.record_image(env, Path(values["path"]))
    standin.store_backup_credentials(env)  # prod has backups on: the team's one-time secret setup
    deployed = stage.pipelines("deploy", "--artifact", values["path"], "--image", image, stack="prod")
    assert deployed.returncode == 0, deployed.stderr
    return values["version"]


def broken_model(repo: Path) -> str:
    """A commit with a packaging bug: a new version, measured well (the gate passes), that ships a model
    fitted on two of the three features. The service cannot load it, so dev's deploy or smoke fails."""
    path = repo / "model" / "train.py"
    text = path.read_text()
    edits = [
        (
            "    fingerprint = data_fingerprint(data)\n",
            '    fingerprint = data_fingerprint(data)\n    params = {**params, "packaging": "rehearsal-broken"}\n',
        ),
        (  # only the pickled file: the metrics and the drift reference are the good model's
            "    joblib.dump(estimator, staging / MODEL_FILE)\n",
            "    from sklearn.linear_model import LinearRegression\n\n"
            "    joblib.dump(LinearRegression().fit(data.x_train[:, :2], data.y_train), staging / MODEL_FILE)\n",
        ),
    ]
    for old, new in edits:
        assert old in text, f"model/train.py changed: the rehearsal's sabotage needs {old!r}"
        text = text.replace(old, new, 1)
    path.write_text(text)
    return commit(repo, "a broken model")


SHADOW_PARAMS = "alpha=3.0"  # the challenger: the same recipe with another regularisation, another version
SHADOW_REQUESTS = 60


def shadow_run(stage: Stage, action: str) -> Run:
    inputs = {"environment": "staging", "action": action, "sample": "1", "params": SHADOW_PARAMS}
    return stage.rehearsal.run("shadow.yml", "workflow_dispatch", {"inputs": inputs}, inputs=inputs)


def live_requests(stage: Stage, stack: str, n: int) -> None:
    """N users' requests (no X-Modelship-Source: live) to the stack's Service, with a key allowed to predict."""
    url, key = stage.outputs(stack)["serviceUrl"], stage.api_key(stack)
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"} if key else {}) as client:
        for i in range(n):
            body = {"size": 900.0 + 37 * i, "bedrooms": 1 + i % 5, "age": i % 40}
            client.post(f"{url}/predict", json=body).raise_for_status()


def stack_postgres_url(stage: Stage, stack: str) -> str:
    """The URL of the stack's Postgres (the stand-in's embedded one for the CNPG Cluster), seen from the runner."""
    from pipelines.devtools.embedded_pg import EmbeddedPostgres

    backend = Path(stage.rehearsal.env["PULUMI_BACKEND_URL"][len("file://") :]) / ".pulumi"
    (run_dir,) = (backend / "standin-run").glob(f"*/{stack}")
    return EmbeddedPostgres(run_dir / "pg").url


def rehearse_shadow(stage: Stage, envs: dict[str, Environment]) -> None:
    """shadow.yml on staging: start a challenger trained from the commit, let users' requests reach it, report
    (the log is reachable from the runner through the environment's LOG_DATABASE_URL), stop."""
    stage.after("shadow-start", shadow_run(stage, "start"))
    if stage.runs["shadow-start"].result("shadow") != "success":
        return
    live_requests(stage, "staging", SHADOW_REQUESTS)
    with_secret(envs, "staging", "LOG_DATABASE_URL", stack_postgres_url(stage, "staging"))
    stage.after("shadow-report", shadow_run(stage, "report"))
    stage.after("shadow-stop", shadow_run(stage, "stop"))


CANARY_STEP_SECONDS = 20  # prod's policy says 120 (a few hundred requests at prod's rate); the users here send ~40/s


def short_canary_steps(repo: Path) -> str:
    """The rehearsal's one edit to the policy: shorter steps (min_samples, the checks and the limits as shipped)."""
    path = repo / "pipelines" / "canary_policy.toml"
    text = path.read_text()
    assert "\nseconds = 120\n" in text, "pipelines/canary_policy.toml changed: the rehearsal shortens [steps] seconds"
    path.write_text(text.replace("\nseconds = 120\n", f"\nseconds = {CANARY_STEP_SECONDS}\n", 1))
    return commit(repo, "rehearsal: shorter canary steps")


def changed_feature_pipeline(repo: Path) -> str:
    """A commit whose data pipeline changed: prices come out about 30 % higher per square foot. Measured on its
    own data the model is as good as before (the gate passes, smoke and load checks pass), but on prod's live
    traffic it answers differently from stable: the canary's answer check is what stops it."""
    path = repo / "model" / "recipes.py"
    text = path.read_text()
    old = "    price = size * 100 + bedrooms * 5000"
    assert old in text, "model/recipes.py changed: the rehearsal's skew needs the house-price formula"
    path.write_text(text.replace(old, "    price = size * 130 + bedrooms * 5000", 1))
    return commit(repo, "house-price: prices from the new listings feed")


@contextmanager
def prometheus(state: Path) -> Iterator[str]:
    """Debian's Prometheus scraping every pod the stand-in's PodMonitors name (file_sd), every second."""
    from pipelines.devtools.embedded_pg import free_port
    from pipelines.devtools.monitor import prometheus_command

    targets = state / "prometheus"
    targets.mkdir(parents=True, exist_ok=True)
    config = state / "prometheus.yml"
    scrape = {"job_name": "pods", "file_sd_configs": [{"files": [str(targets / "*.json")], "refresh_interval": "2s"}]}
    config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}))
    listen = f"127.0.0.1:{free_port()}"
    with (state / "prometheus.log").open("w") as log:
        server = subprocess.Popen(prometheus_command(config, state / "prometheus-data", listen), stdout=log,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://{listen}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (state / "prometheus.log").read_text()
            time.sleep(0.2)
        yield f"http://{listen}"
    finally:
        server.terminate()
        server.wait(30)


def deploy_with_users(stage: Stage, key: str, sha: str) -> None:
    """deploy.yml for a push of SHA, with prod's users sending live requests the whole time."""
    url = stage.outputs("prod")["serviceUrl"]
    out = stage.rehearsal.state / "users" / key
    with live_users(url, out, users=3, api_key=stage.api_key("prod"), wait="0.03,0.08") as users:
        time.sleep(2)  # the users are sending before the run starts
        stage.after(key, stage.rehearsal.run("deploy.yml", "push", push(sha), approve={"production"}))
    stage.users[key] = users


def with_secret(envs: dict[str, Environment], name: str, secret: str, value: str) -> None:
    envs[name] = replace(envs[name], secrets={**envs[name].secrets, secret: value})


@pytest.fixture(scope="session")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    assert STANDIN_CLI.exists(), "the stand-in Pulumi CLI (tests/rehearsal/standin_pulumi) is missing"
    base = tmp_path_factory.mktemp("rehearsal")
    repo = base / "repo"
    snapshot_repo(ROOT, repo)
    sha = short_canary_steps(repo)
    envs = environments()
    variables = {"DEPLOY_RUNNER": "rehearsal-deploy", "CI_PYTEST_ARGS": CI_TESTS, "PULUMI_PR_TEAM": "modelship-pr"}
    variables |= {"PULUMI_ORG": ORG, "LOADCHECK_PROFILE": "local"}  # local: the 2-core SLO profile
    env = standin_env(base / "standin")
    state = Path(env["MODELSHIP_REHEARSAL_DIR"])  # one folder for the stand-in CLI and the stand-in actions
    with ExitStack() as running:
        variables |= {"PROD_CANARY": "true", "PROMETHEUS_URL": running.enter_context(prometheus(state))}
        rehearsal = Rehearsal(repo, state, envs, variables, env=env)
        stage = Stage(rehearsal, envs)
        yield from _rehearse(stage, envs, env, repo, sha)


def _rehearse(stage: Stage, envs: dict[str, Environment], env: dict[str, str], repo: Path, sha: str) -> Iterator[Stage]:
    rehearsal, base = stage.rehearsal, repo.parent
    try:
        stage.seeded = seed(stage, env)
        with_secret(envs, "production", "PROD_LOG_DATABASE_URL", stack_postgres_url(stage, "prod"))
        deploy_with_users(stage, "deploy", sha)
        stage.after("broken", rehearsal.run("deploy.yml", "push", push(broken_model(repo)), approve={"production"}))
        who = ["-c", "user.name=rehearsal", "-c", "user.email=rehearsal@localhost"]
        subprocess.run(["git", *who, "revert", "--no-edit", "HEAD"], cwd=repo, check=True, capture_output=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        stage.after("ci", rehearsal.run("ci.yml", "pull_request", pull_request("opened", head)))
        stage.after("pr", rehearsal.run("pr-environment.yml", "pull_request", pull_request("opened", head)))
        stage.after("pr-closed", rehearsal.run("pr-environment.yml", "pull_request", pull_request("closed", head)))
        loadtest = rehearsal.run(
            "loadtest.yml",
            "workflow_dispatch",
            {"inputs": {"environment": "staging"}},
            inputs={"environment": "staging"},
        )
        stage.after("loadtest", loadtest)
        rehearse_shadow(stage, envs)
        deploy_with_users(stage, "skewed", changed_feature_pipeline(repo))
        yield stage
    finally:
        (base / "summary.txt").write_text(stage.summary() + "\n")
        importlib.import_module("tests.rehearsal.standin_env").kill_all(env)  # every service and Postgres it started


def test_push_to_main_deploys_dev_staging_and_prod(stage: Stage) -> None:
    run = stage.runs["deploy"]
    assert run.returncode == 0, run.log
    assert {job: run.result(job) for job in ("train", "build", *STACKS)} == dict.fromkeys(
        ("train", "build", *STACKS), "success"
    )
    version = run.jobs["train"].outputs["train.version"]
    for stack in STACKS:
        history = stage.pipelines("history", stack=stack)
        assert history.returncode == 0, history.stderr
        # the workflow's update of this version, with its smoke and loadcheck verdicts: the two columns after
        # the digest (prod's canary column says "pass" too, once per step)
        updates = [line.split() for line in history.stdout.splitlines() if version in line and "succeeded" in line]
        verdicts = [fields[fields.index(version) + 2 : fields.index(version) + 4] for fields in updates]
        assert ["pass", "pass"] in verdicts, history.stdout


def test_build_push_records_the_digest_of_the_trained_artifact(stage: Stage) -> None:
    run = stage.runs["deploy"]
    version, digest = run.jobs["train"].outputs["train.version"], run.jobs["build"].outputs["build.digest"]
    stored = Path(json.loads((stage.rehearsal.state / "images.json").read_text())[digest])
    assert json.loads((stored / "manifest.json").read_text())["version"] == version
    assert artifact_digest(stored) == digest, "the digest names exactly the artifact the train job uploaded"
    uploaded = stage.rehearsal.state / "runs" / str(run.run_id) / "artifacts" / "model" / version
    assert artifact_digest(uploaded) == digest


def test_a_broken_model_rolls_dev_back_and_leaves_staging_and_prod(stage: Stage) -> None:
    good = stage.runs["deploy"].jobs["train"].outputs["train.version"]
    run = stage.runs["broken"]
    assert run.result("dev") == "failure" and run.result("staging") != "success" and run.result("prod") != "success"
    assert stage.served["broken"] == stage.served["deploy"], "dev rolled back; staging and prod untouched"
    assert stage.served["deploy"]["dev"] == good


def test_every_stack_serves_and_names_the_new_version(stage: Stage) -> None:
    version = stage.runs["deploy"].jobs["train"].outputs["train.version"]
    for stack in STACKS:  # right after the deploy run (a later push reaches dev and staging)
        assert stage.served["deploy"][stack] == version
        assert version in json.dumps(stage.named["deploy"][stack])


def prod_canary_record(stage: Stage, run: Run) -> dict[str, Any]:
    """The --canary-record of the run's prod job, from its reports-prod artifact."""
    artifacts = stage.rehearsal.state / "runs" / str(run.run_id) / "artifacts"
    found = sorted(artifacts.glob("reports-prod/**/canary.json"))
    assert found, f"no canary record in {artifacts}: {sorted(p.name for p in artifacts.glob('*/**/*'))}"
    record: dict[str, Any] = json.loads(found[0].read_text())
    return record


def test_prod_takes_a_healthy_push_through_its_canary_with_users_on_it(stage: Stage) -> None:
    run, users = stage.runs["deploy"], stage.users["deploy"]
    record = prod_canary_record(stage, run)
    assert record["verdict"] == "promoted", record
    assert record["stable_version"] == stage.seeded
    assert record["candidate_version"] == run.jobs["train"].outputs["train.version"]
    assert [(s["weight"], s["verdict"]) for s in record["steps"]] == [(10, "pass"), (50, "pass")], record
    for step in record["steps"]:
        assert min(step["stable"]["live_requests"], step["canary"]["live_requests"]) >= 200, step
        errors = next(c for c in step["checks"] if c["name"] == "error_rate")
        assert errors["verdict"] == "pass", errors  # both arms' requests counted in Prometheus
    assert users["failures"] == 0 and users["requests"] > 800, users
    history = stage.pipelines("history", stack="prod")
    assert "canary" in history.stdout and "promoted" in history.stdout, history.stdout


def test_a_push_that_answers_differently_on_live_traffic_is_aborted_by_prods_canary(stage: Stage) -> None:
    run, users = stage.runs["skewed"], stage.users["skewed"]
    candidate = run.jobs["train"].outputs["train.version"]
    assert {job: run.result(job) for job in ("train", "build", *STACKS)} == {
        "train": "success", "build": "success", "dev": "success", "staging": "success", "prod": "failure"
    }, run.log  # fmt: skip
    record = prod_canary_record(stage, run)
    assert record["verdict"] == "aborted" and record["candidate_version"] == candidate, record
    failed = [c["name"] for c in record["steps"][-1]["checks"] if c["verdict"] == "fail"]
    assert "answers" in failed, record["steps"][-1]
    assert stage.served["skewed"]["prod"] == stage.served["deploy"]["prod"], "prod still serves stable"
    assert stage.served["skewed"]["staging"] == candidate
    assert users["failures"] == 0 and users["requests"] > 0, users  # no user request failed, abort included
    status = stage.pipelines("status", "--json", stack="prod")
    assert status.returncode == 0 and json.loads(status.stdout)["canary"] is None, status.stdout + status.stderr
    assert stage.named["skewed"]["prod"].get("canaryWeight") is None, "the canary Deployment is gone"


def test_pull_request_runs_ci_with_a_gate_and_a_policy_checked_preview(stage: Stage) -> None:
    run = stage.runs["ci"]
    assert {job: run.result(job) for job in ("test", "model", "preview")} == dict.fromkeys(
        ("test", "model", "preview"), "success"
    ), run.log
    deployed = stage.runs["deploy"].jobs["train"].outputs["train.version"]
    gate = run.jobs["model"].summary  # compared with the model artifact of the last successful deploy run
    assert f"baseline from: artifact baseline/{deployed}" in gate and "result: PASS" in gate, gate
    comments = sorted((stage.rehearsal.state / "comments" / str(PR)).glob("*.md"))
    preview = [c.read_text() for c in comments if "`preview` on" in c.read_text()]
    assert preview and "organization/staging" in preview[0] and "policy pack" in preview[0].lower(), preview


def test_pull_request_deploys_checks_and_comments_its_stack_then_destroys_it(stage: Stage) -> None:
    assert stage.runs["pr"].result("deploy") == "success", stage.runs["pr"].log
    comments = [c.read_text() for c in sorted((stage.rehearsal.state / "comments" / str(PR)).glob("*.md"))]
    body = next(c for c in comments if f"Environment `pr-{PR}`" in c)
    assert "PASS" in body and "(not run)" not in body
    assert stage.runs["pr-closed"].result("destroy") == "success", stage.runs["pr-closed"].log
    listed = stage.pipelines("history", stack=f"pr-{PR}")
    assert listed.returncode != 0, "the PR stack's state is gone after the close"


def test_loadtest_of_staging_leaves_its_report(stage: Stage) -> None:
    run = stage.runs["loadtest"]
    assert run.result("loadtest") == "success", run.log
    reports = list((stage.rehearsal.state / "runs" / str(run.run_id) / "artifacts").glob("loadtest-*/*"))
    assert reports, "the load test uploaded no report"


def test_rollback_of_prod_returns_to_the_previous_version(stage: Stage) -> None:
    before = stage.served_version("prod")
    assert before == stage.runs["deploy"].jobs["train"].outputs["train.version"] != stage.seeded
    run = stage.rehearsal.run(
        "rollback.yml",
        "workflow_dispatch",
        {"inputs": {"stack": "prod"}},
        inputs={"stack": "prod"},
        approve={"production"},
    )
    stage.after("rollback", run)
    assert run.result("rollback") == "success", run.log
    assert stage.served_version("prod") == stage.seeded, "prod serves the model it served before the push"


def test_a_shadow_on_staging_is_started_reported_and_stopped_by_its_workflow(stage: Stage) -> None:
    start, report, stop = (stage.runs.get(f"shadow-{a}") for a in ("start", "report", "stop"))
    assert start is not None and start.result("shadow") == "success", start.log if start else "not run"
    assert report is not None and report.result("shadow") == "success", report.log
    assert stop is not None and stop.result("shadow") == "success", stop.log
    challenger = start.jobs["train"].outputs["train.version"]
    assert challenger != stage.served_version("staging")  # another model than the one it shadows
    uploaded = stage.rehearsal.state / "runs" / str(report.run_id) / "artifacts" / f"shadow-report-{report.run_id}"
    found = json.loads((uploaded / "report.json").read_text())["result"]
    assert found["challenger"] == challenger
    assert found["coverage"]["copies"]["scored"] >= SHADOW_REQUESTS and found["coverage"]["copies"]["dropped"] == 0
    assert found["agreement"]["instances"] >= SHADOW_REQUESTS and found["agreement"]["mae"] > 0
    assert (uploaded / "report.png").read_bytes()[:4] == b"\x89PNG"
    status = stage.pipelines("status", "--json", stack="staging")
    assert status.returncode == 0 and json.loads(status.stdout)["shadow"] is None, status.stdout + status.stderr
