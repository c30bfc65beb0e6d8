"""The rehearsal without a workflow engine: the real pipelines CLI -> the real pulumi.automation SDK -> the
stand-in `pulumi` -> the real infra program -> real service processes and Postgres, one per stack.

One story, in order (each test builds on the previous): release v1 to dev, promote it to staging and prod;
release v2 the same way; a broken model fails smoke on dev and is rolled back while staging and prod stay
untouched; on-call rolls prod back; a PR stack is deployed and destroyed. Each step asserts what the stacks
serve (/model), their outputs and their history verdicts, not only exit codes.

The API keys of staging and prod reach the stacks as the deploy job gives them: MODELSHIP_PIPELINE_API_KEYS
(the keys file, stored as the secret auth.apiKeys before `up`) and MODELSHIP_PIPELINE_API_KEY (what smoke
and the gate send).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

from model.artifact import sha256_file
from model.train import train
from tests.rehearsal.standin_env import record_image, store_backup_credentials

pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
KEYS = {stack: f"rehearsal-{stack}-key-{n}" for n, stack in enumerate(("staging", "prod"), start=1)}


@dataclass
class Rehearsal:
    env: dict[str, str]
    root: Path
    versions: dict[str, str] = field(default_factory=dict)  # label -> model version
    artifacts: dict[str, Path] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)

    def pipelines(self, *args: str, stack: str | None = None) -> subprocess.CompletedProcess[str]:
        """`python -m pipelines ARGS` as a workflow step runs it, with the keys of STACK's environment."""
        env = {**os.environ, **self.env, "MODELSHIP_PIPELINE_REPORTS_DIR": str(self.root / "reports")}
        env.pop("MODELSHIP_PIPELINE_API_KEY", None)
        env.pop("MODELSHIP_PIPELINE_API_KEYS", None)
        if stack in KEYS:
            env["MODELSHIP_PIPELINE_API_KEY"] = KEYS[stack]
            env["MODELSHIP_PIPELINE_API_KEYS"] = f"ci predict,read,synthetic {KEYS[stack]}\n"
        return subprocess.run(
            [sys.executable, "-m", "pipelines", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )

    def ok(self, *args: str, stack: str | None = None) -> str:
        done = self.pipelines(*args, stack=stack)
        assert done.returncode == 0, f"pipelines {' '.join(args)} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
        return done.stdout + done.stderr

    def pulumi(self, *args: str) -> Any:
        env = {**os.environ, **self.env}
        done = subprocess.run(["pulumi", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def outputs(self, stack: str) -> dict[str, Any]:
        found: dict[str, Any] = self.pulumi("stack", "output", "--json", "--stack", stack)
        return found

    def history(self, stack: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.pulumi("stack", "history", "--json", "--stack", stack)
        return found

    def tags(self, stack: str) -> dict[str, str]:
        found: dict[str, str] = self.pulumi("stack", "tag", "ls", "--json", "--stack", stack)
        return found

    def served(self, stack: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{self.outputs(stack)['serviceUrl']}/model", headers=headers, timeout=10)

    def serves(self, stack: str) -> str:
        response = self.served(stack, KEYS.get(stack))
        assert response.status_code == 200, response.text
        return str(response.json()["version"])


@pytest.fixture(scope="module")
def rehearsal(standin: dict[str, str], tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Rehearsal:
    root = tmp_path_factory.mktemp("rehearsal")
    run = Rehearsal(standin, root)
    store_backup_credentials(standin)  # prod has backups on: the team's one-time secret setup
    for label, seed in (("v1", 42), ("v2", 7)):
        trained = train("house-price", artifacts_dir, seed=seed)  # reused when the session trained it already
        run.versions[label], run.artifacts[label] = trained.version, trained.path
        run.images[label] = record_image(standin, trained.path)  # what build-push does in deploy.yml
    broken = broken_artifact(run.artifacts["v2"], root / "artifacts")
    run.versions["broken"], run.artifacts["broken"] = broken.name, broken
    run.images["broken"] = record_image(standin, broken)
    return run


def broken_artifact(good: Path, out: Path) -> Path:
    """A model that packages fine and passes the gate (its manifest claims good's metrics) but answers NaN:
    the kind of defect only a smoke test against the running service catches."""
    version = "house-price-b0000000000b"
    folder = out / version
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(good, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    model = DummyRegressor(strategy="constant", constant=0.0).fit(np.zeros((2, 3)), np.zeros(2))
    model.constant_ = np.array([[np.nan]])
    model_file = folder / manifest["artifact"]["file"]
    joblib.dump(model, model_file)
    manifest["version"] = version
    manifest["artifact"]["sha256"] = sha256_file(model_file)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def latest(history: list[dict[str, Any]]) -> dict[str, Any]:
    return history[0]


def verdicts(run: Rehearsal, stack: str, update: int) -> dict[str, str]:
    prefix = f"modelship:u{update}:"
    return {k[len(prefix) :]: v for k, v in run.tags(stack).items() if k.startswith(prefix)}


def release(run: Rehearsal, label: str, stack: str = "dev", *extra: str) -> subprocess.CompletedProcess[str]:
    return run.pipelines(
        "release",
        "--stack",
        stack,
        "--target",
        "pulumi",
        "--artifact",
        str(run.artifacts[label]),
        "--image",
        run.images[label],
        "--no-loadcheck",
        *extra,
        stack=stack,
    )


def promote(run: Rehearsal, source: str, destination: str) -> str:
    return run.ok(
        "promote", "--from", source, "--to", destination, "--target", "pulumi", "--verify", "--no-loadcheck",
        stack=destination,
    )  # fmt: skip


def test_release_v1_to_dev(rehearsal: Rehearsal) -> None:
    done = release(rehearsal, "v1")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Policy pack modelship-guardrails" in done.stderr  # the pack ran on this `up`
    v1 = rehearsal.versions["v1"]
    assert rehearsal.serves("dev") == v1
    outputs = rehearsal.outputs("dev")
    assert outputs["modelVersion"] == v1 and outputs["imageRef"] == rehearsal.images["v1"]
    update = latest(rehearsal.history("dev"))
    assert update["result"] == "succeeded" and update["config"]["modelship:modelVersion"]["value"] == v1
    assert verdicts(rehearsal, "dev", update["version"]) == {"smoke": "pass"}


def test_promote_v1_to_staging_and_prod_with_their_keys(rehearsal: Rehearsal) -> None:
    for source, destination in (("dev", "staging"), ("staging", "prod")):
        promote(rehearsal, source, destination)
        assert rehearsal.serves(destination) == rehearsal.versions["v1"]
        assert rehearsal.served(destination).status_code == 401  # auth.required, keys from the environment
        update = latest(rehearsal.history(destination))
        assert update["config"]["modelship:auth.apiKeys"] == {"secret": True}  # stored, shown masked
        assert update["config"]["modelship:image.digestRef"]["value"] == rehearsal.images["v1"]
        assert verdicts(rehearsal, destination, update["version"]) == {"smoke": "pass"}


def test_release_v2_gated_against_dev_then_promoted(rehearsal: Rehearsal) -> None:
    done = release(rehearsal, "v2")
    assert done.returncode == 0, done.stderr[-4000:]
    v1, v2 = rehearsal.versions["v1"], rehearsal.versions["v2"]
    assert f"gate: candidate {v2} vs baseline {v1}" in done.stdout
    assert "baseline from: stack dev update #1" in done.stdout
    promote(rehearsal, "dev", "staging")
    promote(rehearsal, "staging", "prod")
    for stack in ("dev", "staging", "prod"):
        assert rehearsal.serves(stack) == v2
        assert rehearsal.outputs(stack)["modelVersion"] == v2


def test_a_broken_model_fails_smoke_on_dev_and_is_rolled_back(rehearsal: Rehearsal) -> None:
    before = {stack: len(rehearsal.history(stack)) for stack in ("staging", "prod")}
    done = release(rehearsal, "broken")
    assert done.returncode == 1
    assert "FAILED at smoke" in done.stdout
    v2 = rehearsal.versions["v2"]
    assert rehearsal.serves("dev") == v2  # the rollback re-applied v2
    rollback, failed = rehearsal.history("dev")[:2]
    assert failed["config"]["modelship:modelVersion"]["value"] == rehearsal.versions["broken"]
    assert verdicts(rehearsal, "dev", failed["version"]) == {"smoke": "fail"}
    assert rollback["config"]["modelship:modelVersion"]["value"] == v2 and rollback["result"] == "succeeded"
    assert verdicts(rehearsal, "dev", rollback["version"]) == {"smoke": "pass"}
    for stack in ("staging", "prod"):  # untouched
        assert len(rehearsal.history(stack)) == before[stack]
        assert rehearsal.serves(stack) == v2


def test_history_lists_updates_with_verdicts(rehearsal: Rehearsal) -> None:
    table = rehearsal.ok("history", "--stack", "dev", "--target", "pulumi")
    assert rehearsal.versions["broken"] in table and rehearsal.versions["v2"] in table
    rows = [line for line in table.splitlines() if rehearsal.versions["broken"] in line]
    assert any("fail" in row for row in rows)


def test_rollback_prod_returns_to_v1(rehearsal: Rehearsal) -> None:
    rehearsal.ok("rollback", "--stack", "prod", "--target", "pulumi", stack="prod")
    assert rehearsal.serves("prod") == rehearsal.versions["v1"]
    assert rehearsal.outputs("prod")["modelVersion"] == rehearsal.versions["v1"]
    assert rehearsal.serves("staging") == rehearsal.versions["v2"]


def test_a_pr_stack_without_a_stack_file_deploys_and_is_destroyed(rehearsal: Rehearsal) -> None:
    assert not (ROOT / "Pulumi.pr-7.yaml").exists()
    rehearsal.ok(
        "deploy", "--stack", "pr-7", "--target", "pulumi", "--artifact", str(rehearsal.artifacts["v2"]),
        "--image", rehearsal.images["v2"], "--config", "db.installOperator=false",
    )  # fmt: skip
    rehearsal.ok("smoke", "--stack", "pr-7", "--target", "pulumi")
    url = rehearsal.outputs("pr-7")["serviceUrl"]
    assert rehearsal.serves("pr-7") == rehearsal.versions["v2"]
    rehearsal.ok("destroy", "--stack", "pr-7", "--target", "pulumi")
    stacks = [s["name"] for s in rehearsal.pulumi("stack", "ls", "--json")]
    assert "pr-7" not in stacks and {"dev", "staging", "prod"} <= set(stacks)
    backend = Path(rehearsal.env["PULUMI_BACKEND_URL"][len("file://") :]) / ".pulumi"
    assert not list(backend.rglob("*pr-7*"))  # state, history, locks and processes: all gone
    assert (backend.parent / "standin-logs" / "modelship-pr-7" / "modelship.log").is_file()  # its pods' logs kept
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/model", timeout=5)
