"""Drift in Prometheus: each feature's (and the output's) PSI over a window, from the service's per-bin counters
against the reference it exports, and the two alerts on it. Part of alerts.rule_groups.

PSI is model/drift.py's: sum over bins of (live - ref) * ln(live / ref), each fraction floored at PSI_FLOOR
(`clamp_min`), so a bin the window left empty counts as rare, not impossible. That needs every bin's counter to
exist at zero (the service creates them at start-up). Series are summed over pods per namespace, model version,
feature and bin; the reference is the same on every pod of a version (`max`). An alert needs PSI above the
exported threshold *and* at least the reference's `window` live values in the window: the thresholds are
calibrated for that sample size, and a quiet hour of a few requests has a noisy PSI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from model.drift import PSI_FLOOR
from service.drift import INPUT_BINS, OUTPUT, OUTPUT_BINS, REFERENCE_FRACTION, THRESHOLD, WINDOW

if TYPE_CHECKING:
    from infra.components.alerts import RuleSettings

DRIFT_WINDOW = "1h"  # the rules' and the dashboard's default window
BY_BIN = "namespace, model_version, feature, bin"
BY_FEATURE = "namespace, model_version, feature"
BY_VERSION = "namespace, model_version"
FEATURES, THE_OUTPUT = f'feature!="{OUTPUT}"', f'feature="{OUTPUT}"'
REFERENCE = "modelship:drift_reference_fraction"


def live_fraction(window: str) -> str:
    return f"modelship:drift_live_fraction:{window}"


def input_psi(window: str) -> str:
    return f"modelship:drift_input_psi:{window}"


def output_psi(window: str) -> str:
    return f"modelship:drift_output_psi:{window}"


def live_count(window: str) -> str:
    return f"modelship:drift_live_count:{window}"


def drift_groups(settings: RuleSettings) -> list[dict[str, Any]]:
    interval = settings.evaluation_interval
    return [
        {"name": "modelship-drift-recording", "interval": interval, "rules": _recording(settings)},
        {"name": "modelship-drift-alerts", "interval": interval, "rules": _alerts(settings)},
    ]


def _sel(settings: RuleSettings, *extra: str) -> str:
    return "{" + ",".join(m for m in (settings.matchers, *extra) if m) + "}"


def _fractions(counter: str, by: str, per: str) -> str:
    """Each bin's share of the window's values; no series while the window saw none (no division by zero)."""
    return f"sum by ({by}) ({counter}) / ignoring(bin) group_left () (sum by ({per}) ({counter}) > 0)"


def _psi_terms(window: str, matcher: str) -> str:
    live = f"clamp_min({live_fraction(window)}{{{matcher}}}, {PSI_FLOOR:g})"
    ref = f"clamp_min({REFERENCE}{{{matcher}}}, {PSI_FLOOR:g})"
    return f"({live} - {ref}) * ln({live} / {ref})"


def _recording(settings: RuleSettings) -> list[dict[str, Any]]:
    w = settings.drift_window
    inputs = f"increase({INPUT_BINS}_total{_sel(settings)}[{w}])"
    outputs = f"increase({OUTPUT_BINS}_total{_sel(settings)}[{w}])"
    # Rules of a group run in order at one timestamp: later rules read what earlier ones recorded.
    return [
        {"record": REFERENCE, "expr": f"max by ({BY_BIN}) ({REFERENCE_FRACTION}{_sel(settings)})"},
        {"record": live_fraction(w), "expr": _fractions(inputs, BY_BIN, BY_FEATURE)},
        {"record": live_fraction(w), "expr": _fractions(outputs, f"{BY_VERSION}, bin", BY_VERSION),
         "labels": {"feature": OUTPUT}},
        {"record": input_psi(w), "expr": f"sum by ({BY_FEATURE}) ({_psi_terms(w, FEATURES)})"},
        {"record": output_psi(w), "expr": f"sum by ({BY_VERSION}) ({_psi_terms(w, THE_OUTPUT)})"},
        # every live value lands in exactly one output bin: their sum is the live count
        {"record": live_count(w), "expr": f"sum by ({BY_VERSION}) ({outputs})"},
    ]  # fmt: skip


def _enough(settings: RuleSettings) -> str:
    """The minimum-sample guard: at least the reference's window of live values in the rules' window."""
    window = f"max by ({BY_VERSION}) ({WINDOW}{_sel(settings)})"
    return f"on({BY_VERSION}) ({live_count(settings.drift_window)}{{}} >= on({BY_VERSION}) {window})"


def _alerts(settings: RuleSettings) -> list[dict[str, Any]]:
    w = settings.drift_window
    feature_threshold = f"max by ({BY_FEATURE}) ({THRESHOLD}{_sel(settings, FEATURES)})"
    output_threshold = f"max by ({BY_VERSION}) ({THRESHOLD}{_sel(settings, THE_OUTPUT)})"
    return [
        _alert(settings, "ModelshipInputDrift",
               f"{input_psi(w)}{{}} > on({BY_FEATURE}) {feature_threshold} and {_enough(settings)}",
               "Live values of feature {{ $labels.feature }} no longer look like the training data of model "
               "{{ $labels.model_version }} (PSI over " + w + " above its threshold)"),
        _alert(settings, "ModelshipOutputDrift",
               f"{output_psi(w)}{{}} > on({BY_VERSION}) {output_threshold} and {_enough(settings)}",
               "The predictions of model {{ $labels.model_version }} no longer look like its predictions on the "
               "training data (PSI over " + w + " above its threshold)"),
    ]  # fmt: skip


def _alert(settings: RuleSettings, name: str, expr: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": settings.drift_for,
        "labels": {"severity": "ticket"},
        "annotations": {"summary": summary, "runbook_url": f"{settings.runbook_url}#{name.lower()}"},
    }
