"""A canary as declared state on a stack: the config that starts, clears and promotes one, and its driver's heartbeat.

`canary.weight` above 0 in a stack's config means a canary runs (infra/contract.py). The driver that runs it
annotates the update it made with a heartbeat (`canary.driver`: host, pid, time), refreshed while it waits; a
canary whose heartbeat is stale, or whose pid is gone on this host, is an orphan: its driver died, and the next
`canary`, `promote` or `rollback` on the stack says so in one line instead of deploying over it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from infra import contract
from pipelines.errors import StageError
from pipelines.targets.base import ARTIFACT_DIR_KEY, DEPLOY_KEYS, IMAGE_REF_KEY, MODEL_VERSION_KEY, Stack

WEIGHT_KEY = contract.full_key(contract.CANARY_WEIGHT)
VERSION_KEY = contract.full_key(contract.CANARY_MODEL_VERSION)
ARTIFACT_KEY = contract.full_key(contract.CANARY_ARTIFACT_DIR)
IMAGE_KEY = contract.full_key(contract.CANARY_IMAGE_DIGEST_REF)
# The stable key each canary key mirrors: a promotion copies the canary's exact values back.
MIRRORS = {MODEL_VERSION_KEY: VERSION_KEY, ARTIFACT_DIR_KEY: ARTIFACT_KEY, IMAGE_REF_KEY: IMAGE_KEY}
# No canary: weight 0 and the canary's own keys empty (their declared defaults), so nothing of it lingers.
CLEARED = {WEIGHT_KEY: "0", VERSION_KEY: "", ARTIFACT_KEY: "", IMAGE_KEY: ""}
DRIVER = "canary.driver"  # the annotation holding the heartbeat
RECORD = "canary"  # the annotation holding a step's or a run's verdict (pipelines history shows it)


class CanaryRunningError(StageError):
    """A canary already runs on the stack (its driver alive, or dead and the canary orphaned)."""


def canary_config(candidate: Mapping[str, str], weight: int) -> dict[str, str]:
    """The canary keys that run CANDIDATE (a deploy config: model version, artifact, digest) at WEIGHT percent."""
    return {MIRRORS[key]: candidate[key] for key in DEPLOY_KEYS if key in candidate} | {WEIGHT_KEY: str(weight)}


def stable_config(stack: Stack) -> dict[str, str]:
    """The stable keys the stack declares now (what an abort leaves exactly as it is)."""
    return {key: value for key in DEPLOY_KEYS if (value := stack.get_config(key)) is not None}


def weight(stack: Stack) -> int:
    raw = stack.get_config(WEIGHT_KEY) or "0"
    try:
        return int(raw)
    except ValueError:
        return 0 if raw.strip() in ("", "0") else 100  # unreadable: assume the worst, a canary is there


def heartbeat() -> str:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": datetime.now(UTC).isoformat()})


@dataclass(frozen=True)
class CanaryState:
    """What a stack says about its canary: none, one whose driver is alive, or an orphan."""

    stack: str
    weight: int
    version: str | None
    driver: dict[str, str] | None  # the newest heartbeat
    alive: bool

    @property
    def running(self) -> bool:
        return self.weight > 0

    def describe(self) -> str:
        if not self.running:
            return f"no canary on {self.stack}"
        who = "no driver heartbeat"
        if self.driver:
            who = f"driver {self.driver.get('host')}:{self.driver.get('pid')}, last heartbeat {self.driver.get('time')}"
        state = "in progress" if self.alive else f"orphaned (its driver is gone: {who})"
        return f"{self.stack} runs a canary of {self.version} at {self.weight}% ({state})"


def _alive(driver: Mapping[str, str] | None, stale_s: float) -> bool:
    if not driver:
        return False
    try:
        age = (datetime.now(UTC) - datetime.fromisoformat(driver["time"])).total_seconds()
        pid = int(driver["pid"])
    except (KeyError, ValueError):
        return False
    if age > stale_s:
        return False
    if driver.get("host") == socket.gethostname():
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def read_state(stack: Stack, stale_s: float) -> CanaryState:
    """The stack's canary from its config and its newest driver heartbeat."""
    driver = None
    for update in stack.history():
        if DRIVER in update.annotations:
            try:
                driver = dict(json.loads(update.annotations[DRIVER]))
            except ValueError:
                driver = None
            break
    return CanaryState(stack.name, weight(stack), stack.get_config(VERSION_KEY), driver, _alive(driver, stale_s))


def refuse_if_running(stack: Stack, stale_s: float | None, target: str, doing: str) -> None:
    """Raise CanaryRunningError (one line, with the fix) when a canary runs on STACK (stale_s: the policy's)."""
    if stale_s is None:
        from pipelines.canary_policy import load_policy

        stale_s = load_policy().steps.heartbeat_stale_seconds
    state = read_state(stack, stale_s)
    if state.running:
        fix = f"python -m pipelines canary abort --stack {stack.name} --target {target}"
        raise CanaryRunningError(f"refusing to {doing}: {state.describe()}; run `{fix}` first")
