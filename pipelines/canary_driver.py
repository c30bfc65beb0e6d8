"""The canary driver: run a candidate next to the stable version on a share of live traffic, judge it, promote or abort.

The canary is declared state (infra/contract.py): each step sets `canary.weight` and runs `up`; the driver waits
for each arm's live requests, compares them (pipelines/canary_checks.py, thresholds in canary_policy.toml) and
either goes on, promotes (the stable keys take the candidate's exact version, artifact and digest; the canary
keys are cleared) or aborts (weight 0, canary keys cleared, stable untouched). `abort` does the last by hand.
pipelines/canary.py is its command line.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from pipelines import canary_log
from pipelines.canary_checks import INCONCLUSIVE, PASS, Arms, judge
from pipelines.canary_errors import ErrorSource, Requests
from pipelines.canary_policy import CanaryPolicy
from pipelines.canary_report import ABORTED, PROMOTED, CanaryResult, StepRecord, step_note, verdict_note, write_metrics
from pipelines.canary_state import (
    CLEARED,
    DRIVER,
    RECORD,
    canary_config,
    heartbeat,
    refuse_if_running,
    stable_config,
    weight,
)
from pipelines.deploy import DeployResult, apply_config
from pipelines.errors import ConfigError, StageError
from pipelines.targets.base import MODEL_VERSION_KEY, OnOutput, Stack

log = logging.getLogger(__name__)


class Interrupted(StageError):
    """The driver was asked to stop (SIGTERM, Ctrl-C): it aborts the canary before it exits."""


@dataclass
class CanaryDriver:
    """One canary run on one stack. `sleep` and `errors` are injectable; everything else is the real thing."""

    stack: Stack
    target: str  # the target's kind, for apply_config and the messages
    policy: CanaryPolicy
    database_url: str
    errors: ErrorSource
    metrics_path: Path | None = None
    on_output: OnOutput | None = None
    sleep: Callable[[float], None] = time.sleep
    final: DeployResult | None = None  # the update that promoted or aborted
    _update: int | None = None
    _beat_at: float = 0.0

    def run(self, candidate: Mapping[str, str], message: str) -> CanaryResult:
        """Step CANDIDATE (a deploy config: model version, artifact, digest) through the policy's weights.

        Returns:
            CanaryResult: promoted (the stack's stable version is the candidate now) or aborted (stable as before).
        """
        stale = self.policy.steps.heartbeat_stale_seconds
        refuse_if_running(self.stack, stale, self.target, "start a canary")
        stable = stable_config(self.stack)
        version = candidate[MODEL_VERSION_KEY]
        if MODEL_VERSION_KEY not in stable:
            raise ConfigError(f"{self.stack.name} has no stable deployment to compare with; deploy it first")
        if stable[MODEL_VERSION_KEY] == version:
            raise ConfigError(f"{version} is already the stable version of {self.stack.name}: nothing to canary")
        steps: list[StepRecord] = []
        try:
            with _abort_on_sigterm():
                for weight in self.policy.steps.weights:
                    step = self._step(stable, candidate, weight, message)
                    steps.append(step)
                    if step.verdict != PASS:
                        why = f"step {weight}% was {step.verdict}"
                        return self._finish(ABORTED, why, stable, candidate, steps)
            return self._finish(PROMOTED, "every step passed", stable, candidate, steps)
        except (Interrupted, StageError, psycopg.Error) as exc:
            log.error("aborting the canary of %s: %s", version, exc)
            self._finish(ABORTED, f"the driver stopped: {exc}", stable, candidate, steps)
            raise

    # -- one step ---------------------------------------------------------------------------------------------
    def _step(self, stable: Mapping[str, str], candidate: Mapping[str, str], weight: int, message: str) -> StepRecord:
        versions = {"stable": stable[MODEL_VERSION_KEY], "canary": candidate[MODEL_VERSION_KEY]}
        text = f"canary {versions['canary']} at {weight}% ({message})"
        deployed = apply_config(
            self.stack, self.target, {**stable, **canary_config(candidate, weight)}, text, self.on_output
        )
        self._update = deployed.update
        self._beat(force=True)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            since, started = canary_log.now(conn), time.monotonic()
            counted = self.errors.read(versions)
            extensions, length = 0, self.policy.steps.seconds
            while True:
                self._wait(started + length * (extensions + 1))
                verdict, arms, checks = self._look(conn, versions, since, counted)
                if verdict != INCONCLUSIVE or extensions >= self.policy.steps.max_extensions:
                    break
                extensions += 1
                log.info(
                    "step %s%% inconclusive, extended (%s of %s)", weight, extensions, self.policy.steps.max_extensions
                )
        step = StepRecord(
            weight,
            verdict,
            _arm(arms, "stable"),
            _arm(arms, "canary"),
            checks,
            deployed.update,
            time.monotonic() - started,
            extensions,
        )
        self._note(step)
        return step

    def _look(
        self,
        conn: psycopg.Connection[Any],
        versions: Mapping[str, str],
        since: datetime,
        counted: Mapping[str, Requests],
    ) -> tuple[str, Arms, list[Any]]:
        now = self.errors.read(versions)
        arms = Arms(
            canary_log.read_arm(conn, versions["stable"], since),
            canary_log.read_arm(conn, versions["canary"], since),
            now["stable"].since(counted["stable"]),
            now["canary"].since(counted["canary"]),
        )
        verdict, checks = judge(arms, self.policy)
        log.info("look at %s: %s (%s)", versions["canary"], verdict, ", ".join(f"{c.name}={c.verdict}" for c in checks))
        if self.metrics_path is not None:
            step = StepRecord(0, verdict, {}, {}, checks)
            write_metrics(self.metrics_path, self.stack.name, self._weight_now(), step)
        return verdict, arms, checks

    def _wait(self, until: float) -> None:
        while (left := until - time.monotonic()) > 0:
            self.sleep(min(left, self.policy.steps.poll_seconds))
            self._beat()

    def _beat(self, force: bool = False) -> None:
        """Refresh the heartbeat, at most every quarter of the stale limit (each is a tag write on Pulumi)."""
        if self._update is None or (not force and time.monotonic() - self._beat_at < self._beat_every):
            return
        self.stack.annotate(self._update, DRIVER, heartbeat())
        self._beat_at = time.monotonic()

    @property
    def _beat_every(self) -> float:
        return self.policy.steps.heartbeat_stale_seconds / 4

    def _weight_now(self) -> int:
        return weight(self.stack)

    def _note(self, step: StepRecord) -> None:
        if step.update is not None:
            self.stack.annotate(step.update, RECORD, step_note(step))

    # -- the end: promote or abort ------------------------------------------------------------------------------
    def _finish(
        self,
        verdict: str,
        reason: str,
        stable: Mapping[str, str],
        candidate: Mapping[str, str],
        steps: list[StepRecord],
    ) -> CanaryResult:
        version = candidate[MODEL_VERSION_KEY]
        if verdict == PROMOTED:
            config, text = {**candidate, **CLEARED}, f"promote canary {version} ({reason})"
        else:
            config, text = {**stable, **CLEARED}, f"abort canary {version}: {reason}"
        deployed = apply_config(self.stack, self.target, config, text, self.on_output)
        result = CanaryResult(
            self.stack.name, stable.get(MODEL_VERSION_KEY), version, verdict, reason, steps, deployed.update
        )
        if deployed.update is not None:
            self.stack.annotate(deployed.update, RECORD, verdict_note(result, steps))
        if self.metrics_path is not None:
            write_metrics(self.metrics_path, self.stack.name, 0, steps[-1] if steps else None, verdict)
        self.final = deployed
        return result


def _arm(arms: Arms, name: str) -> dict[str, Any]:
    logged = arms.stable if name == "stable" else arms.canary
    counted = arms.stable_requests if name == "stable" else arms.canary_requests
    return {
        "version": logged.version,
        "live_requests": logged.requests,
        "p95_ms": logged.p95_ms,
        "p99_ms": logged.p99_ms,
        "answers": len(logged.answers),
        "counted_requests": None if counted is None else int(counted.total),
        "errors": None if counted is None else int(counted.errors),
    }


@contextmanager
def _abort_on_sigterm() -> Iterator[None]:
    """SIGTERM (a cancelled CI job, `kill`) raises Interrupted, so the canary is aborted, not left half-rolled."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("interrupted (Ctrl-C)") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def abort(stack: Stack, target: str, message: str, on_output: OnOutput | None = None) -> DeployResult | None:
    """Remove STACK's canary (weight 0, canary keys cleared), stable untouched; None when there was none.

    Args:
        stack: the stack whose canary goes, whether its driver is alive or dead.
        target: the target's kind.
        message: the update message.
        on_output: receives `up`'s output line by line.
    """
    if weight(stack) <= 0:
        return None
    deployed = apply_config(stack, target, {**stable_config(stack), **CLEARED}, message, on_output)
    if deployed.update is not None:
        stack.annotate(deployed.update, RECORD, f"{ABORTED} by hand: {message}"[:250])
    return deployed
