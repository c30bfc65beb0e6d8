"""A canary and a shadow on the local target, as an on-call runs them: the real `python -m pipelines` CLI, HAProxy as
the Service in front of real service processes, one real Postgres, and users' traffic from Locust's `LiveUser`
(loadtest/live.py), which sends no X-Modelship-Source, so every request counts as live."""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.manifest import Manifest
from pipelines.targets.local import LocalStack
from tests.conftest import ROOT
from tests.pipelines.canary_traffic import deployed_local_stack, live_users, versions

pytestmark = [pytest.mark.slow, pytest.mark.needs_engine]
STACK = "drill"


@pytest.fixture(scope="module")
def local(v1_artifact: Path) -> Iterator[tuple[LocalStack, dict[str, str]]]:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.fail("needs Debian's haproxy (the local target's Service): run `make haproxy`")
    with deployed_local_stack(STACK, v1_artifact, "modelship-live-drills-") as found:
        yield found


def cli(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pipelines", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_canary_under_live_users_is_promoted_through_the_service(
    local: tuple[LocalStack, dict[str, str]], v1_artifact: Path, v2_artifact: Path, tmp_path: Path
) -> None:
    stack, env = local
    v2 = Manifest.load(v2_artifact / "manifest.json").version
    record = tmp_path / "canary.json"
    with live_users(stack.url, tmp_path) as users:
        time.sleep(2)  # the users are sending before the canary starts
        run = cli(env, "canary", "--stack", STACK, "--artifact", str(v2_artifact), "--steps", "50",
                  "--step-seconds", "3", "--min-samples", "50", "--record", str(record))  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads(record.read_text())
    assert found["verdict"] == "promoted"
    (step,) = found["steps"]
    assert step["weight"] == 50 and step["verdict"] == "pass"
    assert min(step["stable"]["live_requests"], step["canary"]["live_requests"]) >= 50, step  # via HAProxy
    assert users["failures"] == 0 and users["requests"] > 100, users
    assert versions(stack.url, 10) == {v2: 10}  # stable is now the candidate; the canary is gone
    assert [p["track"] for p in stack._pods()] == ["stable"]


def test_a_shadow_under_live_users_is_reported_then_stopped(
    local: tuple[LocalStack, dict[str, str]], v1_artifact: Path, v2_artifact: Path, tmp_path: Path
) -> None:
    stack, env = local
    served = versions(stack.url, 1).most_common(1)[0][0]
    other = next(a for a in (v1_artifact, v2_artifact) if Manifest.load(a / "manifest.json").version != served)
    challenger = Manifest.load(other / "manifest.json").version
    started = cli(env, "shadow", "start", "--stack", STACK, "--artifact", str(other), "--sample", "1.0")
    assert started.returncode == 0, started.stderr
    record, chart = tmp_path / "shadow.json", tmp_path / "shadow.png"
    with live_users(stack.url, tmp_path) as users:
        time.sleep(6)
    reported = cli(env, "shadow", "report", "--stack", STACK, "--record", str(record), "--chart", str(chart))
    assert reported.returncode == 0, reported.stderr
    found = json.loads(record.read_text())["result"]
    assert found["challenger"] == challenger and list(found["champions"]) == [served]
    copies = found["coverage"]["copies"]
    assert copies["scored"] > 50 and copies["dropped"] == 0 and copies["failed"] == 0, copies
    assert found["agreement"]["instances"] == found["requests"] > 50
    assert found["agreement"]["mae"] > 0  # another seed's model: close, never identical
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert users["failures"] == 0 and users["requests"] >= found["requests"], users
    stopped = cli(env, "shadow", "stop", "--stack", STACK)
    assert stopped.returncode == 0, stopped.stderr
    status = cli(env, "status", "--stack", STACK, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["shadow"] is None
