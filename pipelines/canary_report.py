"""What a canary run leaves behind: the `--record` JSON, the history annotations, and a Prometheus textfile.

Metrics: a CLI lives minutes, too short to be scraped reliably and too long to push once at the end, so the
driver rewrites `reports/canary/<stack>.prom` (node-exporter textfile format, atomically) after every look at
the arms. A node-exporter `--collector.textfile.directory` pointed at that folder (or the CI's artifact) shows
a canary live: each check's value per arm next to its threshold, the weight, and the step's verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from pipelines.canary_checks import FAIL, INCONCLUSIVE, PASS, Check
from pipelines.report import to_jsonable

PROMOTED, ABORTED = "promoted", "aborted"
VERDICT_CODE = {PASS: 1, INCONCLUSIVE: 0, FAIL: -1}


@dataclass(frozen=True)
class StepRecord:
    weight: int
    verdict: str
    stable: dict[str, Any]
    canary: dict[str, Any]
    checks: list[Check]
    update: int | None = None  # the update that set this weight
    seconds: float = 0.0  # how long the step ran, extensions included
    extensions: int = 0


@dataclass(frozen=True)
class CanaryResult:
    stack: str
    stable_version: str | None
    candidate_version: str
    verdict: str  # promoted | aborted
    reason: str
    steps: list[StepRecord] = field(default_factory=list)
    update: int | None = None  # the update that promoted or aborted

    @property
    def passed(self) -> bool:
        return self.verdict == PROMOTED

    def record(self) -> dict[str, Any]:
        """The --record document: {"verdict", "steps": [{"weight", "verdict", "stable", "canary", "checks"}]}."""
        steps = [
            {
                "weight": s.weight,
                "verdict": s.verdict,
                "stable": s.stable,
                "canary": s.canary,
                "checks": [to_jsonable(c) for c in s.checks],
                "update": s.update,
                "seconds": round(s.seconds, 1),
                "extensions": s.extensions,
            }
            for s in self.steps
        ]
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "stack": self.stack,
            "stable_version": self.stable_version,
            "candidate_version": self.candidate_version,
            "update": self.update,
            "steps": steps,
        }

    def summary(self) -> str:
        steps = ", ".join(f"{s.weight}%: {s.verdict}" for s in self.steps) or "no step"
        return f"canary {self.candidate_version} on {self.stack}: {self.verdict} ({steps}); {self.reason}"


def step_note(step: StepRecord) -> str:
    """A step as one annotation (Pulumi tags take 256 characters): the verdict and what decided it."""
    worst = [c for c in step.checks if c.verdict != PASS]
    told = "; ".join(f"{c.name} {c.verdict}" + (f" ({c.reason})" if c.reason else "") for c in worst)
    return (f"{step.weight}% {step.verdict}" + (f": {told}" if told else ""))[:250]


def write_metrics(path: Path, stack: str, weight: int, step: StepRecord | None, verdict: str | None = None) -> None:
    """Rewrite the textfile: the weight, and per check each arm's value and the threshold (numbers only)."""
    registry = CollectorRegistry()
    labels = ["stack"]
    Gauge("modelship_canary_weight", "Percent of traffic on the canary", labels, registry=registry).labels(stack).set(
        weight
    )
    if verdict is not None:
        done = Gauge("modelship_canary_promoted", "1 promoted, 0 aborted (the run ended)", labels, registry=registry)
        done.labels(stack).set(1 if verdict == PROMOTED else 0)
    if step is not None:
        _step_metrics(registry, stack, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def _step_metrics(registry: CollectorRegistry, stack: str, step: StepRecord) -> None:
    value = Gauge(
        "modelship_canary_check_value", "A check's value per arm", ["stack", "check", "arm"], registry=registry
    )
    limit = Gauge("modelship_canary_check_threshold", "A check's limit", ["stack", "check", "limit"], registry=registry)
    verdict = Gauge(
        "modelship_canary_check_verdict", "1 pass, 0 inconclusive, -1 fail", ["stack", "check"], registry=registry
    )
    stat = Gauge(
        "modelship_canary_check_statistic", "A check's statistic (ratio, PSI)", ["stack", "check"], registry=registry
    )
    for check in step.checks:
        for arm, measured in (("stable", check.stable), ("canary", check.canary)):
            if isinstance(measured, (int, float)):
                value.labels(stack, check.name, arm).set(measured)
        for name, bound in check.threshold.items():
            limit.labels(stack, check.name, name).set(bound)
        verdict.labels(stack, check.name).set(VERDICT_CODE[check.verdict])
        if check.statistic is not None:
            stat.labels(stack, check.name).set(check.statistic)
    Gauge(
        "modelship_canary_step_verdict",
        "The step's verdict: 1 pass, 0 inconclusive, -1 fail",
        ["stack"],
        registry=registry,
    ).labels(stack).set(VERDICT_CODE[step.verdict])


def verdict_note(result: CanaryResult, steps: Sequence[StepRecord]) -> str:
    return (f"{result.verdict}: " + ", ".join(f"{s.weight}% {s.verdict}" for s in steps))[:250]
