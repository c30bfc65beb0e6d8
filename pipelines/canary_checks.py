"""The comparisons of one canary step: canary against stable over the same window, each check a verdict.

Pure functions of what the log and the counters measured (pipelines/canary_log.py, canary_errors.py) and the
policy: unit-testable without a service. A check never passes on missing data and never reports NaN: an arm
without data makes the check `inconclusive`, its value `None` (JSON null) and a reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from pipelines.canary_errors import Requests
from pipelines.canary_log import Answer, ArmLog
from pipelines.canary_policy import CanaryPolicy

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
_SMOOTH = 0.5  # added to every bin's count: an empty bin on one side gives a finite PSI, not log(0)


@dataclass(frozen=True)
class Check:
    """One comparison. `stable`/`canary` are each arm's value; `test`, `statistic` and `p_value` say how they were
    compared, `threshold` what the policy allows; `reason` says why a check is not a plain pass."""

    name: str
    stable: Any
    canary: Any
    threshold: dict[str, Any]
    verdict: str
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Arms:
    """What was measured for each arm in one window."""

    stable: ArmLog
    canary: ArmLog
    stable_requests: Requests | None  # from the counters; None when unknown
    canary_requests: Requests | None
    extra: dict[str, Any] = field(default_factory=dict)


def _finite(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def samples(arms: Arms, policy: CanaryPolicy) -> Check:
    need = policy.steps.min_samples
    short = [name for name, arm in (("stable", arms.stable), ("canary", arms.canary)) if arm.requests < need]
    verdict, reason = (INCONCLUSIVE, f"fewer than {need} live requests: {', '.join(short)}") if short else (PASS, None)
    return Check("samples", arms.stable.requests, arms.canary.requests, {"min": need}, verdict, reason=reason)


def error_rate(arms: Arms, policy: CanaryPolicy) -> Check:
    """One-sided Fisher's exact test (does the canary fail more often?) plus a cap on the difference."""
    rule = {"alpha": policy.errors.alpha, "max_difference": policy.errors.max_difference}
    s, c = arms.stable_requests, arms.canary_requests
    if s is None or c is None or s.total <= 0 or c.total <= 0:
        rate_s = None if s is None or s.total <= 0 else s.errors / s.total
        rate_c = None if c is None or c.total <= 0 else c.errors / c.total
        why = "no request counted on an arm (or a counter reset)"
        return Check("error_rate", _finite(rate_s), _finite(rate_c), rule, INCONCLUSIVE, "fisher_exact", reason=why)
    rate_s, rate_c = s.errors / s.total, c.errors / c.total
    table = [[int(c.errors), int(c.total - c.errors)], [int(s.errors), int(s.total - s.errors)]]
    p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    difference = rate_c - rate_s
    failed = (p_value < policy.errors.alpha and difference > 0) or difference > policy.errors.max_difference
    return Check(
        "error_rate",
        _finite(rate_s),
        _finite(rate_c),
        rule,
        FAIL if failed else PASS,
        "fisher_exact",
        _finite(difference),
        _finite(p_value),
    )


def latency(arms: Arms, policy: CanaryPolicy, quantile: str) -> Check:
    """Canary/stable ratio of a latency percentile; above the limit fails only if also min_difference_ms slower."""
    limit = policy.latency.max_p95_ratio if quantile == "p95" else policy.latency.max_p99_ratio
    rule = {"max_ratio": limit, "min_difference_ms": policy.latency.min_difference_ms}
    stable, canary = getattr(arms.stable, f"{quantile}_ms"), getattr(arms.canary, f"{quantile}_ms")
    name = f"latency_{quantile}_ms"
    if stable is None or canary is None:
        return Check(name, stable, canary, rule, INCONCLUSIVE, "ratio", reason="no live request on an arm")
    ratio = canary / stable if stable > 0 else (1.0 if canary == 0 else math.inf)
    slower = ratio > limit and canary - stable > policy.latency.min_difference_ms
    return Check(
        name, stable, canary, rule, FAIL if slower else PASS, "ratio", _finite(ratio) if math.isfinite(ratio) else None
    )


def _shared_counts(stable: Sequence[Answer], canary: Sequence[Answer], bins: int) -> tuple[list[int], list[int]]:
    """Both arms counted in the same bins: quantiles of the pooled values, or one bin per class."""
    if all(isinstance(v, (int, float)) for v in [*stable, *canary]):
        pooled = np.asarray([*stable, *canary], dtype=float)
        edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1))[1:-1])
        count = np.bincount  # right-closed inner edges: a value on an edge goes up, as model/drift.py bins
        s = count(np.searchsorted(edges, np.asarray(stable, float), side="right"), minlength=len(edges) + 1)
        c = count(np.searchsorted(edges, np.asarray(canary, float), side="right"), minlength=len(edges) + 1)
        return s.tolist(), c.tolist()
    classes = sorted({str(v) for v in [*stable, *canary]})
    s_counts, c_counts = Counter(map(str, stable)), Counter(map(str, canary))
    return [s_counts[k] for k in classes], [c_counts[k] for k in classes]


def psi(stable: Sequence[int], canary: Sequence[int]) -> float:
    """Population stability index of two count vectors over the same bins (smoothed: always finite)."""
    s = np.asarray(stable, float) + _SMOOTH
    c = np.asarray(canary, float) + _SMOOTH
    s, c = s / s.sum(), c / c.sum()
    return float(np.sum((c - s) * np.log(c / s)))


def _is_numeric(values: Sequence[Answer]) -> bool:
    return all(isinstance(v, (int, float)) for v in values)


def answers(arms: Arms, policy: CanaryPolicy) -> Check:
    """Predictions: KS (regression) or chi-square (classes) for significance, PSI in shared bins for size."""
    rule = {"alpha": policy.answers.alpha, "max_psi": policy.answers.max_psi}
    s, c = arms.stable.answers, arms.canary.answers
    numeric = _is_numeric([*s, *c])
    test = "ks_2samp" if numeric else "chi2_contingency"
    if not s or not c:
        return Check("answers", len(s), len(c), rule, INCONCLUSIVE, test, reason="no logged answer on an arm")
    s_counts, c_counts = _shared_counts(s, c, policy.answers.bins)
    index = psi(s_counts, c_counts)
    p_value = _p_answers(s, c, s_counts, c_counts, numeric)
    failed = p_value < policy.answers.alpha and index > policy.answers.max_psi
    summary = _summary if numeric else _frequencies
    return Check(
        "answers", summary(s), summary(c), rule, FAIL if failed else PASS, test, _finite(index), _finite(p_value)
    )


def _p_answers(
    s: Sequence[Answer], c: Sequence[Answer], s_counts: list[int], c_counts: list[int], numeric: bool
) -> float:
    if numeric:
        return float(stats.ks_2samp(np.asarray(s, float), np.asarray(c, float)).pvalue)
    kept = [(a, b) for a, b in zip(s_counts, c_counts, strict=True) if a + b > 0]
    if len(kept) < 2:  # one class on both sides: nothing differs
        return 1.0
    return float(stats.chi2_contingency(np.asarray(kept).T).pvalue)


def _summary(values: Sequence[Answer]) -> dict[str, float | None]:
    array = np.asarray(values, float)
    return {"n": len(array), "mean": _finite(float(array.mean()), 3), "p50": _finite(float(np.median(array)), 3)}


def _frequencies(values: Sequence[Answer]) -> dict[str, float | None]:
    counts = Counter(map(str, values))
    return {k: _finite(v / len(values), 4) for k, v in sorted(counts.items())}


def inputs(arms: Arms, policy: CanaryPolicy) -> Check:
    """Did both arms see the same traffic? The largest per-feature PSI; a mismatch is inconclusive, not a fail."""
    rule = {"max_psi": policy.inputs.max_psi}
    s, c = arms.stable.inputs, arms.canary.inputs
    features = sorted(set(s) & set(c))
    if not features:
        return Check("inputs", len(s), len(c), rule, INCONCLUSIVE, "psi", reason="no logged input on an arm")
    by_feature = {name: psi(*_shared_counts(s[name], c[name], policy.inputs.bins)) for name in features}
    worst = max(by_feature, key=by_feature.__getitem__)
    index = by_feature[worst]
    mismatch = index > policy.inputs.max_psi
    reason = f"the arms saw different inputs ({worst}: PSI {index:.3f})" if mismatch else None
    counts = ({"n": len(s[worst])}, {"n": len(c[worst])})
    return Check(
        "inputs", counts[0], counts[1], rule, INCONCLUSIVE if mismatch else PASS, "psi", _finite(index), reason=reason
    )


def judge(arms: Arms, policy: CanaryPolicy) -> tuple[str, list[Check]]:
    """Every check of one step, and the step's verdict: any fail fails; else any inconclusive; else pass."""
    checks = [
        samples(arms, policy),
        error_rate(arms, policy),
        latency(arms, policy, "p95"),
        latency(arms, policy, "p99"),
        answers(arms, policy),
        inputs(arms, policy),
    ]
    verdicts = {check.verdict for check in checks}
    # Short of samples nothing else is trusted, except errors: a canary failing every request logs no row at all,
    # and its counters prove it bad before it ever reaches min_samples.
    if checks[0].verdict == INCONCLUSIVE and checks[1].verdict != FAIL:
        return INCONCLUSIVE, checks
    return (FAIL if FAIL in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else PASS), checks
