"""Prometheus Operator objects (PodMonitor, PrometheusRule) and the Grafana dashboard (`monitoring.*`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from infra.config import read
from infra.config.read import StackConfigError

_DURATION = re.compile(r"^[1-9][0-9]*(s|m|h)$")
_LABEL_PAIR = re.compile(r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class MonitoringConfig:
    """Prometheus Operator objects (PodMonitor, PrometheusRule) and the Grafana dashboard ConfigMap."""

    enabled: bool
    scraper_namespace: str
    scrape_interval: str
    selector_labels: dict[str, str]
    dashboard_label: str
    runbook_url: str
    availability_slo: float
    latency_slo: float
    latency_threshold_s: float
    oldest_unflushed_s: int
    backlog_for: str
    spool_percent: int
    rollout_window: str


def load(c: pulumi.Config) -> MonitoringConfig:
    return MonitoringConfig(
        enabled=read.boolean(c, "monitoring.enabled"),
        scraper_namespace=read.string(c, "monitoring.scraperNamespace"),
        scrape_interval=read.string(c, "monitoring.scrapeInterval"),
        selector_labels=_labels("monitoring.selectorLabels", read.string(c, "monitoring.selectorLabels")),
        dashboard_label=read.string(c, "monitoring.dashboardLabel"),
        runbook_url=read.string(c, "monitoring.runbookUrl"),
        availability_slo=_number("monitoring.availabilitySlo", read.string(c, "monitoring.availabilitySlo")),
        latency_slo=_number("monitoring.latencySlo", read.string(c, "monitoring.latencySlo")),
        latency_threshold_s=_number(
            "monitoring.latencyThresholdSeconds", read.string(c, "monitoring.latencyThresholdSeconds")
        ),
        oldest_unflushed_s=read.integer(c, "monitoring.oldestUnflushedSeconds"),
        backlog_for=read.string(c, "monitoring.backlogFor"),
        spool_percent=read.integer(c, "monitoring.spoolPercent"),
        rollout_window=read.string(c, "monitoring.rolloutWindow"),
    )


def _number(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise StackConfigError(f"{key} must be a number such as 99.9, got {value!r}") from None


def _labels(key: str, value: str) -> dict[str, str]:
    pairs = [p.strip() for p in value.split(",") if p.strip()]
    if not all(_LABEL_PAIR.match(p) for p in pairs):
        raise StackConfigError(f"{key} must be comma-separated key=value label pairs, got {value!r}")
    return dict(p.split("=", 1) for p in pairs)


def problems(monitoring: MonitoringConfig) -> list[str]:
    if not monitoring.enabled:
        return []
    # Imported here: only a stack with monitoring on needs the service's histogram buckets.
    from service.observability import LATENCY_BUCKETS

    found = []
    if not (0 < monitoring.availability_slo < 100 and 0 < monitoring.latency_slo < 100):
        found.append("monitoring.availabilitySlo and monitoring.latencySlo must be percentages below 100")
    if monitoring.latency_threshold_s not in LATENCY_BUCKETS:
        found.append(f"monitoring.latencyThresholdSeconds must be a histogram bucket bound: {LATENCY_BUCKETS}")
    if not 1 <= monitoring.spool_percent <= 100 or monitoring.oldest_unflushed_s < 1:
        found.append("monitoring.spoolPercent must be within 1..100 and monitoring.oldestUnflushedSeconds >= 1")
    for key, value in (("scrapeInterval", monitoring.scrape_interval), ("backlogFor", monitoring.backlog_for),
                       ("rolloutWindow", monitoring.rollout_window)):  # fmt: skip
        if not _DURATION.match(value):
            found.append(f"monitoring.{key} must be a duration such as 30s, 5m or 1h, got {value!r}")
    if not monitoring.scraper_namespace or not monitoring.runbook_url.startswith("https://"):
        found.append("monitoring.scraperNamespace must be set and monitoring.runbookUrl must be an https:// URL")
    return found
