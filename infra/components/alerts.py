"""The Prometheus rules of modelship, as plain data: one generator for the PrometheusRule the stacks
declare, for `make monitor` and for the tests (promtool and the live drill), so all three load the same rules.

Metric names are the ones service/observability.py exports (a prometheus_client Counter `x` is scraped as
`x_total`). Every metric selector is written `name{...}` so tests can list the metrics a rule uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.components.drift_rules import DRIFT_WINDOW, drift_groups
from service.settings import Settings as ServiceSettings

REQUESTS = "modelship_http_requests_total"
LATENCY = "modelship_http_request_duration_seconds"
PREDICTIONS = "modelship_predictions_total"
LOG = "modelship_prediction_log"
PREDICT_ROUTE = "/predict"
SERVER_ERROR = 'status=~"5.."'
# Live quality (service/quality_task.py). The service judges degradation with its own quality_tolerance and
# quality_min_labels; the alert guards on the same minimum (the service setting's default: it is not a stack setting).
LIVE_QUALITY = "modelship_live_quality"
QUALITY_MIN_LABELS: int = ServiceSettings.model_fields["quality_min_labels"].default

# Google SRE workbook, "Alerting on SLOs", table 5-8: (long window, short window, burn rate, severity, for).
BURN_WINDOWS: tuple[tuple[str, str, float, str], ...] = (
    ("1h", "5m", 14.4, "page"),
    ("6h", "30m", 6.0, "page"),
    ("1d", "2h", 3.0, "ticket"),
    ("3d", "6h", 1.0, "ticket"),
)
RATE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class RuleSettings:
    """What the rules depend on; durations are Prometheus durations ("90s", "5m")."""

    matchers: str  # label matchers of the service's series, e.g. 'job="modelship",namespace="modelship-prod"'
    runbook_url: str  # docs/runbook.md as people read it; each alert links to its own section
    availability_slo: float  # percent of /predict answers that are not 5xx
    latency_slo: float  # percent of /predict answers faster than latency_threshold_s
    latency_threshold_s: float  # a bucket boundary of the request-latency histogram
    oldest_unflushed_s: float
    backlog_for: str
    spool_max_bytes: int
    spool_percent: int
    rollout_window: str  # longer than any rollout takes: the Deployment's progress deadline is 10 min
    not_ready_for: str = "5m"
    write_errors_for: str = "10m"
    quality_min_labels: int = QUALITY_MIN_LABELS
    quality_for: str = "30m"
    rps_metric: str = ""  # when set, a per-pod requests/s series of this name for the HPA's Pods metric
    evaluation_interval: str = "30s"
    # -- drift (infra/components/drift_rules.py): PSI over drift_window, alerts after drift_for
    drift_window: str = DRIFT_WINDOW
    drift_for: str = "15m"


def le_label(seconds: float) -> str:
    """The `le` label prometheus_client writes for a bucket bound (floatToGoString: 0.25 -> "0.25", 1 -> "1.0")."""
    return repr(float(seconds))


def rule_groups(settings: RuleSettings) -> list[dict[str, Any]]:
    """The `groups:` of a Prometheus rule file (and of a PrometheusRule's spec)."""
    groups = [
        {
            "name": "modelship-slo-recording",
            "interval": settings.evaluation_interval,
            "rules": _slo_recording(settings),
        },
        {"name": "modelship-slo-alerts", "interval": settings.evaluation_interval, "rules": _slo_alerts(settings)},
        {"name": "modelship-prediction-log", "interval": settings.evaluation_interval, "rules": _log_alerts(settings)},
        {"name": "modelship-pods", "interval": settings.evaluation_interval, "rules": _pod_alerts(settings)},
        {"name": "modelship-live-quality", "interval": settings.evaluation_interval, "rules": _quality(settings)},
    ]
    groups += drift_groups(settings)
    if settings.rps_metric:
        groups.append(
            {"name": "modelship-autoscaling", "interval": settings.evaluation_interval, "rules": [_rps(settings)]}
        )
    return groups


def alert_names(settings: RuleSettings) -> list[str]:
    return [r["alert"] for g in rule_groups(settings) for r in g["rules"] if "alert" in r]


def _sel(settings: RuleSettings, *extra: str) -> str:
    return "{" + ",".join(m for m in (settings.matchers, *extra) if m) + "}"


def _route(settings: RuleSettings, *extra: str) -> str:
    return _sel(settings, f'route="{PREDICT_ROUTE}"', *extra)


def _error_ratio(settings: RuleSettings, window: str) -> str:
    bad = f"sum by (namespace) (rate({REQUESTS}{_route(settings, SERVER_ERROR)}[{window}]))"
    total = f"sum by (namespace) (rate({REQUESTS}{_route(settings)}[{window}]))"
    return f"{bad} / {total}"


def _slow_ratio(settings: RuleSettings, window: str) -> str:
    le = f'le="{le_label(settings.latency_threshold_s)}"'
    fast = f"sum by (namespace) (rate({LATENCY}_bucket{_route(settings, le)}[{window}]))"
    total = f"sum by (namespace) (rate({LATENCY}_count{_route(settings)}[{window}]))"
    return f"1 - ({fast} / {total})"


def _slo_recording(settings: RuleSettings) -> list[dict[str, Any]]:
    rules = [
        {"record": f"modelship:predict_errors:ratio_rate{w}", "expr": _error_ratio(settings, w)} for w in RATE_WINDOWS
    ]
    rules += [
        {"record": f"modelship:predict_slow:ratio_rate{w}", "expr": _slow_ratio(settings, w)} for w in RATE_WINDOWS
    ]
    return rules


def _burn(series: str, budget: float, severity: str) -> str:
    """Both windows of each pair above the pair's burn rate (the workbook's multiwindow condition)."""
    pairs = [
        f"({series}{long} > ({rate} * {budget:g}) and {series}{short} > ({rate} * {budget:g}))"
        for long, short, rate, sev in BURN_WINDOWS
        if sev == severity
    ]
    return " or ".join(pairs)


def _slo_alerts(settings: RuleSettings) -> list[dict[str, Any]]:
    availability = 1 - settings.availability_slo / 100
    latency = 1 - settings.latency_slo / 100
    errors, slow = "modelship:predict_errors:ratio_rate", "modelship:predict_slow:ratio_rate"
    ms = f"{settings.latency_threshold_s * 1000:g} ms"
    return [
        _alert(settings, "ModelshipAvailabilityBurnFast", _burn(errors, availability, "page"), "2m", "page",
               f"/predict is burning its {settings.availability_slo:g}% availability budget fast (5xx answers)"),
        _alert(settings, "ModelshipAvailabilityBurnSlow", _burn(errors, availability, "ticket"), "1h", "ticket",
               f"/predict is burning its {settings.availability_slo:g}% availability budget over days (5xx answers)"),
        _alert(settings, "ModelshipLatencyBurnFast", _burn(slow, latency, "page"), "2m", "page",
               f"/predict answers slower than {ms} are burning the {settings.latency_slo:g}% latency budget fast"),
        _alert(settings, "ModelshipLatencyBurnSlow", _burn(slow, latency, "ticket"), "1h", "ticket",
               f"/predict answers slower than {ms} are burning the {settings.latency_slo:g}% latency budget over days"),
    ]  # fmt: skip


def _log_alerts(settings: RuleSettings) -> list[dict[str, Any]]:
    spool_bytes = int(settings.spool_max_bytes * settings.spool_percent / 100)
    return [
        _alert(settings, "ModelshipPredictionLogBacklog",
               f"{LOG}_oldest_unflushed_seconds{_sel(settings)} > {settings.oldest_unflushed_s:g}",
               settings.backlog_for, "page",
               f"A pod holds predictions older than {settings.oldest_unflushed_s:g}s that are not in Postgres yet"),
        _alert(settings, "ModelshipSpoolFilling", f"{LOG}_spool_bytes{_sel(settings)} > {spool_bytes}",
               settings.backlog_for, "page",
               f"A pod's local spool is above {settings.spool_percent}% of its {settings.spool_max_bytes}-byte limit"),
        _alert(settings, "ModelshipPredictionLogWriteErrors", f"rate({LOG}_write_errors_total{_sel(settings)}[5m]) > 0",
               settings.write_errors_for, "ticket",
               f"Writes of the prediction log to Postgres keep failing (for {settings.write_errors_for})"),
    ]  # fmt: skip


def _pod_alerts(settings: RuleSettings) -> list[dict[str, Any]]:
    # The three reasons /ready says no, seen from outside: not scraped at all, model not loaded, spool full.
    not_ready = (
        f"(up{_sel(settings)} == 0) or ({LOG}_model_loaded{_sel(settings)} == 0)"
        f" or ({LOG}_spool_bytes{_sel(settings)} >= {settings.spool_max_bytes})"
    )
    versions = (
        f"count by (namespace) (count by (namespace, model_version) (rate({PREDICTIONS}{_sel(settings)}[5m]) > 0))"
    )
    return [
        _alert(settings, "ModelshipPodNotReady", not_ready, settings.not_ready_for, "ticket",
               f"A modelship pod has not been ready for {settings.not_ready_for}"),
        _alert(settings, "ModelshipMixedModelVersions", f"{versions} > 1", settings.rollout_window, "ticket",
               f"More than one model version has answered for longer than a rollout takes ({settings.rollout_window})"),
    ]  # fmt: skip


def _quality(settings: RuleSettings) -> list[dict[str, Any]]:
    # Every pod computes the same figure from the shared log, so the max over pods; the guard keeps a handful of
    # labels from paging anyone even if a service were configured to judge on fewer.
    by = "max by (namespace, model_version)"
    degraded = (
        f"{by} ({LIVE_QUALITY}_degraded{_sel(settings)}) > 0 and on (namespace, model_version) "
        f"{by} ({LIVE_QUALITY}_labels{_sel(settings)}) >= {settings.quality_min_labels}"
    )
    return [
        _alert(settings, "ModelshipLiveQualityDegraded", degraded, settings.quality_for, "ticket",
               "The served model's primary metric on labelled live traffic is worse than held-out by more than "
               f"the service's quality_tolerance (from {settings.quality_min_labels} labels in the window)"),
    ]  # fmt: skip


def _rps(settings: RuleSettings) -> dict[str, Any]:
    # prometheus-adapter serves this series to the HPA as a Pods metric under the same name (hpa.rpsMetric).
    return {
        "record": settings.rps_metric,
        "expr": f"sum by (namespace, pod) (rate({REQUESTS}{_route(settings)}[1m]))",
    }


def _alert(settings: RuleSettings, name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "runbook_url": f"{settings.runbook_url}#{name.lower()}"},
    }
