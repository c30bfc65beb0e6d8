"""Stage `gate`: may this candidate replace the baseline? Metrics, schema and runtime, in one table."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sklearn

from model.artifact import ArtifactError, load_manifest
from model.manifest import Manifest
from pipelines import commands
from pipelines.baseline import stack_baseline
from pipelines.compat import compare_schemas
from pipelines.errors import ConfigError
from pipelines.report import render_table
from pipelines.settings import REPO_ROOT, PipelineSettings
from pipelines.targets import get_target

log = logging.getLogger(__name__)

LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "log_loss"})


@dataclass(frozen=True)
class GatePolicy:
    tolerance: float = 0.05
    floors: Mapping[str, float] = field(default_factory=dict)
    allow_breaking: bool = False
    serving_sklearn: str | None = None

    @classmethod
    def from_settings(cls, settings: PipelineSettings, **overrides: Any) -> GatePolicy:
        values: dict[str, Any] = {
            "tolerance": settings.gate_tolerance,
            "floors": dict(settings.gate_floors),
            "serving_sklearn": settings.serving_sklearn,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class GateCheck:
    name: str
    baseline: str
    candidate: str
    limit: str
    passed: bool


@dataclass(frozen=True)
class GateResult:
    candidate_version: str
    baseline_version: str | None
    baseline_source: str
    passed: bool
    checks: list[GateCheck]
    notes: list[str]

    def table(self) -> str:
        rows = [[c.name, c.baseline, c.candidate, c.limit, "pass" if c.passed else "FAIL"] for c in self.checks]
        lines = [
            f"gate: candidate {self.candidate_version} vs baseline {self.baseline_version or '(none)'}",
            f"baseline from: {self.baseline_source}",
            "",
            render_table(["check", "baseline", "candidate", "limit", "verdict"], rows),
        ]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"result: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def serving_sklearn_version(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    """The scikit-learn the serving image installs: the exact pin in pyproject, else this process's."""
    if pyproject.is_file():
        if pin := re.search(r'"scikit-learn==([^"]+)"', pyproject.read_text()):
            return pin.group(1)
    return str(sklearn.__version__)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _higher_is_better(metric: str, manifest: Manifest) -> bool:
    primary = manifest.primary_metric
    if metric == primary.name:
        return primary.higher_is_better
    return metric not in LOWER_IS_BETTER


def _regression_check(candidate: Manifest, baseline: Manifest | None, policy: GatePolicy) -> GateCheck:
    name = candidate.primary_metric.name
    value = candidate.metrics[name]
    if baseline is None:
        return GateCheck(f"{name} (primary) vs baseline", "-", _fmt(value), "no baseline", True)
    if baseline.primary_metric.name != name or name not in baseline.metrics:
        base_name = baseline.primary_metric.name
        return GateCheck(f"primary metric {base_name} -> {name}", base_name, name, "same metric", policy.allow_breaking)
    base = baseline.metrics[name]
    slack = policy.tolerance * abs(base)
    if _higher_is_better(name, candidate):
        limit, passed = base - slack, value >= base - slack
        shown = f">= {_fmt(limit)}"
    else:
        limit, passed = base + slack, value <= base + slack
        shown = f"<= {_fmt(limit)}"
    return GateCheck(f"{name} (primary, tol {policy.tolerance:.0%})", _fmt(base), _fmt(value), shown, passed)


def _floor_checks(candidate: Manifest, baseline: Manifest | None, policy: GatePolicy) -> list[GateCheck]:
    checks = []
    for name, floor in sorted(policy.floors.items()):
        if name not in candidate.metrics:
            continue
        value = candidate.metrics[name]
        higher = _higher_is_better(name, candidate)
        passed = value >= floor if higher else value <= floor
        base = baseline.metrics.get(name) if baseline else None
        checks.append(
            GateCheck(f"{name} floor", _fmt(base), _fmt(value), f"{'>=' if higher else '<='} {_fmt(floor)}", passed)
        )
    return checks


def _schema_check(candidate: Manifest, baseline: Manifest | None, policy: GatePolicy, notes: list[str]) -> GateCheck:
    count = f"{len(candidate.features)} features"
    if baseline is None:
        return GateCheck("feature schema", "-", count, "compatible", True)
    diff = compare_schemas(baseline, candidate)
    notes.extend(diff.notes)
    notes.extend(f"BREAKING {b}" for b in diff.breaking)
    if diff.breaking and policy.allow_breaking:
        notes.append("breaking schema changes allowed by --allow-breaking: clients must be updated first")
    limit = "compatible" if not policy.allow_breaking else "any (--allow-breaking)"
    verdict = diff.compatible or policy.allow_breaking
    shown = count if diff.compatible else f"{count}, {len(diff.breaking)} breaking"
    return GateCheck("feature schema", f"{len(baseline.features)} features", shown, limit, verdict)


def _sklearn_check(candidate: Manifest, policy: GatePolicy) -> GateCheck:
    serving = policy.serving_sklearn or serving_sklearn_version()
    trained = candidate.runtime.scikit_learn
    return GateCheck("scikit-learn (artifact vs image)", serving, trained, f"== {serving}", trained == serving)


def evaluate_gate(
    candidate: Manifest, baseline: Manifest | None, policy: GatePolicy, baseline_source: str
) -> GateResult:
    """The pure part of the gate: compare two manifests under a policy."""
    notes: list[str] = []
    checks = [
        _regression_check(candidate, baseline, policy),
        *_floor_checks(candidate, baseline, policy),
        _schema_check(candidate, baseline, policy, notes),
        _sklearn_check(candidate, policy),
    ]
    return GateResult(
        candidate_version=candidate.version,
        baseline_version=baseline.version if baseline else None,
        baseline_source=baseline_source,
        passed=all(c.passed for c in checks),
        checks=checks,
        notes=notes,
    )


def read_manifest(artifact: Path) -> Manifest:
    try:
        return load_manifest(Path(artifact))
    except ArtifactError as exc:
        raise ConfigError(str(exc)) from exc


def gate(
    candidate: Path, baseline: Path | Manifest | None, policy: GatePolicy, baseline_source: str | None = None
) -> GateResult:
    """Decide whether CANDIDATE may replace BASELINE.

    Args:
        candidate: the candidate artifact folder.
        baseline: an artifact folder, an already-read manifest (e.g. a stack's /model), or None when
            nothing is deployed yet (then only the floors and the runtime are checked).
        policy: tolerance, floors, --allow-breaking and the serving scikit-learn version.
        baseline_source: where the baseline came from, for the table.

    Returns:
        GateResult; `passed` is False when any check failed, and `table()` shows why.
    """
    cand = read_manifest(candidate)
    base = read_manifest(baseline) if isinstance(baseline, Path) else baseline
    source = baseline_source or (f"artifact {baseline}" if isinstance(baseline, Path) else "none")
    result = evaluate_gate(cand, base, policy, source)
    log.info("gate %s: %s", cand.version, "pass" if result.passed else "fail")
    return result


# ---- command line --------------------------------------------------------------------------------------------


def gate_options(parser: argparse.ArgumentParser) -> None:
    """The gate's policy; release shares these."""
    parser.add_argument("--tolerance", type=float, help="allowed relative regression of the primary metric")
    parser.add_argument(
        "--floor",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="absolute limit of a metric (repeatable); replaces the configured floors",
    )
    parser.add_argument("--allow-breaking", action="store_true", help="accept an incompatible feature schema")
    parser.add_argument("--serving-sklearn", help="scikit-learn of the serving image (default: pyproject pin)")


def _floor(metric: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"--floor {metric}={value!r}: a floor is a number, e.g. --floor {metric}=0.9")
    return float(value)


def policy_from_args(args: argparse.Namespace, settings: PipelineSettings) -> GatePolicy:
    floors = {k: _floor(k, v) for k, v in commands.pairs(args.floor, "--floor").items()} or None
    return GatePolicy.from_settings(
        settings,
        tolerance=args.tolerance,
        floors=floors,
        allow_breaking=args.allow_breaking,
        serving_sklearn=args.serving_sklearn,
    )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidate", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, help="baseline artifact folder (instead of --stack)")
    commands.stack_options(parser, required=False)
    gate_options(parser)


def _no_baseline(stack: str, target: str) -> str:
    local = "; `make up` serves outside the stacks" if target == "local" else ""
    return f"none: stack {stack} (--target {target}) has no release yet{local}"


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    if args.baseline and args.stack:
        raise ConfigError("give --baseline or --stack, not both")
    baseline: Path | Manifest | None = args.baseline
    source = None
    if args.stack:
        target = get_target(args.target, settings)
        found = stack_baseline(target, args.stack, settings.http_timeout_s, commands.api_key(settings))
        baseline, source = (found.manifest, found.source) if found else (None, _no_baseline(args.stack, args.target))
    result = gate(args.candidate, baseline, policy_from_args(args, settings), source)
    commands.out(result.table())
    return commands.finish(args, "gate", result, result.passed)


STAGE = commands.Stage("gate", "compare a candidate artifact with a baseline or a stack's model", _add_arguments, _run)
