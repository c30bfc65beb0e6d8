"""The whole path on this machine, for real: uvicorn, PostgreSQL, Locust, the CLI.

1. train v1 and release it to a local stack;
2. train v2 (another seed), gate it, release it: /model says v2;
3. `python -m pipelines rollback`: /model says v1, and `history` shows all three updates;
4. release a broken candidate (it loads, but predicts NaN): smoke fails and release rolls back by itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.baseline import stack_baseline
from pipelines.devtools.embedded_pg import free_port
from pipelines.gate import GatePolicy, gate
from pipelines.release import ReleaseResult, release
from pipelines.settings import PipelineSettings
from pipelines.targets.local import LocalTarget
from pipelines.train import train
from pipelines.verify import VerifyOptions
from tests.pipelines.artifacts import make_broken_artifact

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STACK = "e2e"


@pytest.fixture(scope="module")
def settings() -> Iterator[PipelineSettings]:
    # Not under pytest's basetemp: every pytest session resets /tmp/pytest-of-<user> to 0700, which
    # locks the unprivileged Postgres user (see pipelines.devtools.embedded_pg) out of a data folder below it.
    base = Path(tempfile.mkdtemp(prefix="modelship-pipeline-e2e-"))
    yield PipelineSettings(
        state_dir=base / "state",
        artifacts_dir=base / "artifacts",
        reports_dir=base / "reports",
        local_ports={STACK: free_port()},
    )
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def target(settings: PipelineSettings) -> Iterator[LocalTarget]:
    local = LocalTarget(settings)
    yield local
    if (local.stacks_dir / STACK).exists():
        local.select(STACK).destroy()  # stops the service and the stack's Postgres


def served_version(target: LocalTarget) -> str:
    url = target.select(STACK).url
    version: str = httpx.get(f"{url}/model", timeout=5).json()["version"]
    return version


def cli(settings: PipelineSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        MODELSHIP_PIPELINE_STATE_DIR=str(settings.state_dir),
        MODELSHIP_PIPELINE_LOCAL_PORTS=f'{{"{STACK}": {settings.local_ports[STACK]}}}',
        MODELSHIP_PIPELINE_REPORTS_DIR=str(settings.reports_dir),
    )
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def do_release(target: LocalTarget, settings: PipelineSettings, artifact: Path, name: str) -> ReleaseResult:
    options = VerifyOptions(profile="local", out_dir=settings.reports_dir / name, duration_s=3)
    return release(
        target,
        STACK,
        message=f"release {name}",
        policy=GatePolicy(floors={"r2": 0.8}),
        verify_options=options,
        artifact=artifact,
    )


def test_release_upgrade_rollback_and_automatic_rollback(target: LocalTarget, settings: PipelineSettings) -> None:
    # 1. v1, released to an empty stack: no baseline, deploy, smoke, load check.
    v1 = train("house-price", settings.artifacts_dir, seed=42)
    first = do_release(target, settings, v1.path, "v1")
    assert first.passed, first
    assert first.verification is not None and first.verification.loadcheck is not None
    assert first.verification.loadcheck.passed and first.verification.loadcheck.html_path
    assert served_version(target) == v1.version

    # 2. v2 with another seed: the gate compares it with what the stack serves, then release.
    v2 = train("house-price", settings.artifacts_dir, seed=7)
    assert v2.version != v1.version
    baseline = stack_baseline(target, STACK)
    assert baseline is not None and baseline.manifest.version == v1.version
    gated = gate(v2.path, baseline.manifest, GatePolicy(), baseline.source)
    assert gated.passed, gated.table()
    second = do_release(target, settings, v2.path, "v2")
    assert second.passed, second
    assert served_version(target) == v2.version

    # 3. On-call's command, through the real CLI: back to v1; history shows the three updates.
    rolled = cli(settings, "rollback", "--stack", STACK, "--target", "local")
    assert rolled.returncode == 0, rolled.stderr
    assert f"{v2.version} -> {v1.version}" in rolled.stdout
    assert served_version(target) == v1.version
    shown = cli(settings, "history", "--stack", STACK, "--target", "local")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines() if line.lstrip("* ")[:1].isdigit()]
    assert [(r[0], r[5]) for r in rows] == [("*3", v1.version), ("2", v2.version), ("1", v1.version)]
    assert all(r[4] == "succeeded" for r in rows)

    # 4. A broken candidate: verified, loadable, same metrics (the gate passes), but it predicts NaN.
    broken = make_broken_artifact(v2.path, settings.artifacts_dir)
    failed = do_release(target, settings, broken, "broken")
    assert not failed.passed and failed.failed_stage == "smoke"
    assert failed.gate is not None and failed.gate.passed
    assert failed.rollback is not None and failed.rollback.passed
    assert (failed.rollback.from_version, failed.rollback.to_version) == (broken.name, v1.version)
    assert served_version(target) == v1.version
    history = target.select(STACK).history()
    assert [u.number for u in history] == [5, 4, 3, 2, 1]
    assert history[1].model_version == broken.name and history[1].annotations["smoke"] == "fail"
    assert history[0].model_version == v1.version and history[0].annotations["smoke"] == "pass"
