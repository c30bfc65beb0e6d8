"""The local target's Service, for real: HAProxy in front of a stable and a canary uvicorn, one Postgres.

A new connection per request, as kube-proxy balances connections (docs/local-development.md): the canary's
share follows its weight and its readiness, and an abort under live traffic fails no request.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model.manifest import Manifest
from pipelines.devtools.embedded_pg import free_port
from pipelines.settings import PipelineSettings
from pipelines.targets.base import (
    ARTIFACT_DIR_KEY,
    CANARY_ARTIFACT_DIR_KEY,
    CANARY_MODEL_VERSION_KEY,
    CANARY_WEIGHT_KEY,
    MODEL_VERSION_KEY,
    OUTPUT_CANARY_WEIGHT,
)
from pipelines.targets.local import LocalStack, LocalTarget
from tests.pipelines.canary_traffic import versions

pytestmark = [pytest.mark.slow, pytest.mark.needs_engine]
STACK = "canary"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # `make test` installs it (target haproxy); without it the split cannot be shown, so this fails, never skips.
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.fail("needs Debian's haproxy (the local target's Service): run `make haproxy`")
    base = Path(tempfile.mkdtemp(prefix="modelship-local-canary-"))  # not under pytest's 0700 basetemp
    target = LocalTarget(PipelineSettings(state_dir=base / "state", local_ports={STACK: free_port()}))
    selected = target.select(STACK, create=True)
    yield selected
    selected.destroy()
    shutil.rmtree(base, ignore_errors=True)


def test_the_split_follows_the_weight_and_the_ready_pods(
    stack: LocalStack, v1_artifact: Path, v2_artifact: Path
) -> None:
    v1, v2 = Manifest.load(v1_artifact / "manifest.json").version, Manifest.load(v2_artifact / "manifest.json").version
    stack.set_config({MODEL_VERSION_KEY: v1, ARTIFACT_DIR_KEY: str(v1_artifact)})
    stack.up("stable v1")
    assert versions(stack.url, 10) == {v1: 10}

    canary = {CANARY_MODEL_VERSION_KEY: v2, CANARY_ARTIFACT_DIR_KEY: str(v2_artifact), CANARY_WEIGHT_KEY: "20"}
    stack.set_config(canary)
    outcome = stack.up("canary v2 at 20%")
    assert outcome.outputs[OUTPUT_CANARY_WEIGHT] == 20.0
    split = versions(stack.url, 50)
    assert abs(split[v2] - 10) <= 2 and split[v1] + split[v2] == 50, split  # weighted round robin: 10 of 50

    stack.set_config({CANARY_WEIGHT_KEY: "50"})
    stack.up("canary v2 at 50%")  # the same canary process, a new weight
    pods = {p["track"]: p for p in stack._pods()}
    split = versions(stack.url, 40)
    assert abs(split[v2] - 20) <= 2, split

    # A canary pod that stops being ready leaves the Service: the split follows the ready pods.
    os.kill(pods["canary"]["pid"], signal.SIGSTOP)
    try:
        time.sleep(2.5)  # two failed checks of /ready, 0.5 s apart, each timing out after the connect timeout
        assert versions(stack.url, 10) == {v1: 10}
    finally:
        os.kill(pods["canary"]["pid"], signal.SIGCONT)
    time.sleep(1.5)
    assert versions(stack.url, 20)[v2] > 0


def test_an_abort_under_live_traffic_fails_no_request(stack: LocalStack, v1_artifact: Path) -> None:
    v1 = Manifest.load(v1_artifact / "manifest.json").version
    stable_pid = next(p["pid"] for p in stack._pods() if p["track"] == "stable")
    failures: list[str] = []
    answered: Counter[str] = Counter()
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set():
            try:
                with httpx.Client(timeout=10) as client:
                    response = client.get(f"{stack.url}/model")
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:100]}")
                else:
                    answered[response.json()["version"]] += 1
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        stack.set_config({CANARY_WEIGHT_KEY: "0"})
        outcome = stack.up("abort the canary")
        time.sleep(1)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(answered) == 2 and sum(answered.values()) > 20  # both answered while the abort ran
    assert OUTPUT_CANARY_WEIGHT not in outcome.outputs
    assert [(p["track"], p["pid"]) for p in stack._pods()] == [("stable", stable_pid)]  # stable untouched
    assert versions(stack.url, 10) == {v1: 10}
    assert "server canary-" not in (stack.root / "haproxy.cfg").read_text()
