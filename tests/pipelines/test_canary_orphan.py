"""A canary whose driver dies never stays half-rolled unnoticed: kill a real driver (SIGKILL) mid-step, then the
next `canary` and `rollback` refuse in one line naming the orphan, and `canary abort` cleans it up."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.canary_state import DRIVER, WEIGHT_KEY
from pipelines.targets.local import LocalStack
from tests.pipelines.artifacts import relabel_artifact
from tests.pipelines.canary_traffic import deployed_local_stack

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STACK = "canary-orphan"


@pytest.fixture
def local(house_artifact: Path) -> Iterator[tuple[LocalStack, dict[str, str]]]:
    with deployed_local_stack(STACK, house_artifact, "modelship-canary-orphan-") as found:
        yield found


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pipelines", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_a_killed_driver_leaves_an_orphan_that_canary_refuses_and_abort_cleans(
    local: tuple[LocalStack, dict[str, str]], house_artifact: Path, tmp_path: Path
) -> None:
    stack, env = local
    candidate = relabel_artifact(house_artifact, tmp_path, "orphan")
    metrics = f"{stack.url}/metrics"
    run = ["canary", "--stack", STACK, "--artifact", str(candidate), "--stable-metrics", metrics,
           "--canary-metrics", metrics, "--step-seconds", "300"]  # fmt: skip
    driver = subprocess.Popen([sys.executable, "-m", "pipelines", *run], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(DRIVER in u.annotations for u in stack.history()):
            assert driver.poll() is None and time.monotonic() < deadline, "the driver never wrote a heartbeat"
            time.sleep(0.5)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert stack.get_config(WEIGHT_KEY) == "10"  # half-rolled: the canary runs, its driver is gone

    again = _cli(env, *run)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "orphaned" in again.stderr and f"canary abort --stack {STACK}" in again.stderr
    rollback = _cli(env, "rollback", "--stack", STACK, "--no-smoke")
    assert rollback.returncode == 1 and "refusing to roll back" in rollback.stderr, rollback.stderr

    cleaned = _cli(env, "canary", "abort", "--stack", STACK)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "orphaned" in cleaned.stdout
    assert stack.get_config(WEIGHT_KEY) == "0"
    assert stack.history()[0].annotations["canary"].startswith("aborted by hand")
    assert _cli(env, "canary", "abort", "--stack", STACK).stdout.strip() == f"no canary on {STACK}"
