"""The rules prod renders, run by the real promtool: `check rules`, then `test rules` per alert.

Each case feeds promtool series of 1-minute samples and states, at given times, exactly which alerts fire
(promtool fails on a missing or an extra alert). Every alert has a case where it fires; the healthy and the
rollout cases assert every alert is silent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.alerts import LATENCY, LIVE_QUALITY, LOG, PREDICTIONS, QUALITY_MIN_LABELS, REQUESTS
from service.drift import INPUT_BINS, OUTPUT, OUTPUT_BINS, REFERENCE_FRACTION, THRESHOLD, WINDOW
from tests.monitoring.support import rendered_rules, run_promtool, write_rule_file

NS = "modelship-prod"
RULES = rendered_rules("prod")
ALERTS = {r["alert"]: r for g in RULES["groups"] for r in g["rules"] if "alert" in r}
SPOOL_LIMIT = 268435456  # Pulumi.yaml service.spoolMaxBytes; prod pages above 50% of it


def pod(name: str, **extra: str) -> str:
    labels = {"job": "modelship", "namespace": NS, "pod": name, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def traffic(p: str, ok: int, errors: int, fast: int, minutes: int, start: int = 0) -> list[dict[str, str]]:
    """/predict answers per minute on pod P: OK 200s, ERRORS 500s, FAST of the 200s under 250 ms."""
    gap = f"_x{start} " if start else ""
    route = {"route": "/predict", "method": "POST"}
    return [
        {"series": REQUESTS + pod(p, **route, status="200"), "values": f"{gap}0+{ok}x{minutes}"},
        {"series": REQUESTS + pod(p, **route, status="500"), "values": f"{gap}0+{errors}x{minutes}"},
        {
            "series": f"{LATENCY}_bucket" + pod(p, **route, status="200", le="0.25"),
            "values": f"{gap}0+{fast}x{minutes}",
        },
        {"series": f"{LATENCY}_count" + pod(p, **route, status="200"), "values": f"{gap}0+{ok}x{minutes}"},
    ]


def healthy_pod(p: str, minutes: int, version: str = "v1", start: int = 0) -> list[dict[str, str]]:
    gap = f"_x{start} " if start else ""
    series = traffic(p, 100, 0, 100, minutes, start)
    series += [
        {"series": PREDICTIONS + pod(p, model_version=version), "values": f"{gap}0+100x{minutes}"},
        {"series": "up" + pod(p), "values": f"{gap}1x{minutes}"},
        {"series": f"{LOG}_model_loaded" + pod(p), "values": f"{gap}1x{minutes}"},
        {"series": f"{LOG}_spool_bytes" + pod(p), "values": f"{gap}0x{minutes}"},
        {"series": f"{LOG}_oldest_unflushed_seconds" + pod(p), "values": f"{gap}0.01x{minutes}"},
        {"series": f"{LOG}_write_errors_total" + pod(p), "values": f"{gap}0x{minutes}"},
    ]
    return series


@dataclass
class Case:
    name: str
    series: list[dict[str, str]]
    at: str  # promtool duration of the check
    firing: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # alert -> label sets, others silent


def expected(alert: str, labels: dict[str, str]) -> dict[str, Any]:
    rule = ALERTS[alert]
    annotations = {k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], v)
                   for k, v in rule["annotations"].items()}  # fmt: skip
    return {"exp_labels": {**rule["labels"], **labels}, "exp_annotations": annotations}


def namespace_only() -> list[dict[str, str]]:
    return [{"namespace": NS}]


def pod_labels(p: str) -> list[dict[str, str]]:
    return [{"job": "modelship", "namespace": NS, "pod": p}]


def rollout() -> list[dict[str, str]]:
    """v1 on pod a until minute 20; v2 on pod b from minute 15, not scraped for 2 min and not ready for 3."""
    old = healthy_pod("a", 20, "v1")
    new = healthy_pod("b", 30, "v2", start=15)
    for s in new:
        if s["series"].startswith("up{"):
            s["values"] = "_x15 0 0 1x28"
        if s["series"].startswith(f"{LOG}_model_loaded"):
            s["values"] = "_x15 0 0 0 1x27"
    return old + new


CASES = [
    Case("healthy for 4h", healthy_pod("a", 240) + healthy_pod("b", 240), "4h"),
    Case("normal rollout, during", rollout(), "20m"),
    Case("normal rollout, after", rollout(), "44m"),
    Case("10% 5xx for 30 min pages", traffic("a", 100, 10, 100, 30), "30m",
         {"ModelshipAvailabilityBurnFast": namespace_only()}),
    Case("0.5% 5xx for 4h tickets, no page", traffic("a", 200, 1, 200, 240), "4h",
         {"ModelshipAvailabilityBurnSlow": namespace_only()}),
    Case("20% slow for 30 min pages", traffic("a", 100, 0, 80, 30), "30m",
         {"ModelshipLatencyBurnFast": namespace_only()}),
    Case("4% slow for 4h tickets, no page", traffic("a", 100, 0, 96, 240), "4h",
         {"ModelshipLatencyBurnSlow": namespace_only()}),
    Case("oldest unflushed grows a minute a minute", [
        {"series": f"{LOG}_oldest_unflushed_seconds" + pod("a"), "values": "0+60x10"}], "5m",
         {"ModelshipPredictionLogBacklog": pod_labels("a")}),
    Case("spool grows 20 MB a minute", [
        {"series": f"{LOG}_spool_bytes" + pod("a"), "values": "0+20000000x12"}], "12m",
         {"ModelshipSpoolFilling": pod_labels("a")}),
    Case("write errors every minute for 15 min", [
        {"series": f"{LOG}_write_errors_total" + pod("a"), "values": "0+5x20"}], "15m",
         {"ModelshipPredictionLogWriteErrors": pod_labels("a")}),
    Case("one write error is not a trend", [
        {"series": f"{LOG}_write_errors_total" + pod("a"), "values": "0 0 0 1x20"}], "15m"),
    Case("a pod not scraped for 10 min", [{"series": "up" + pod("a"), "values": "0x12"}], "10m",
         {"ModelshipPodNotReady": pod_labels("a")}),
    Case("a pod without its model for 10 min", [
        {"series": "up" + pod("a"), "values": "1x12"},
        {"series": f"{LOG}_model_loaded" + pod("a"), "values": "0x12"}], "10m",
         {"ModelshipPodNotReady": pod_labels("a")}),
    Case("a pod with a full spool for 10 min", [
        {"series": f"{LOG}_spool_bytes" + pod("a"), "values": f"{SPOOL_LIMIT}x12"}], "10m",
         {"ModelshipPodNotReady": pod_labels("a"), "ModelshipSpoolFilling": pod_labels("a")}),
    Case("two model versions answering for 30 min", healthy_pod("a", 40, "v1") + healthy_pod("b", 40, "v2"), "30m",
         {"ModelshipMixedModelVersions": namespace_only()}),
]  # fmt: skip


# -- drift: per-bin counts per minute against a reference of size (4 bins), age (2) and the output (2) ---------
DRIFT_REFERENCE = {"size": (0.25, 0.25, 0.25, 0.25), "age": (0.5, 0.5), OUTPUT: (0.5, 0.5)}
DRIFT_WINDOW = 1000  # live values the thresholds are calibrated for: the alerts' minimum sample


Counts = tuple[int, ...]  # live values per minute in each bin


def drift_pod(size: Counts, age: Counts, output: Counts, minutes: int) -> list[dict[str, str]]:
    """Pod a's drift series: live values per minute in each bin, and the reference it exports."""
    v = {"model_version": "v1"}
    series = [{"series": f"{INPUT_BINS}_total" + pod("a", **v, feature=name, bin=str(i)), "values": f"0+{n}x{minutes}"}
              for name, counts in (("size", size), ("age", age)) for i, n in enumerate(counts)]
    series += [{"series": f"{OUTPUT_BINS}_total" + pod("a", **v, bin=str(i)), "values": f"0+{n}x{minutes}"}
               for i, n in enumerate(output)]
    series += [{"series": REFERENCE_FRACTION + pod("a", **v, feature=name, bin=str(i)), "values": f"{f}x{minutes}"}
               for name, fractions in DRIFT_REFERENCE.items() for i, f in enumerate(fractions)]
    series += [{"series": THRESHOLD + pod("a", **v, feature=name), "values": f"0.1x{minutes}"}
               for name in DRIFT_REFERENCE]
    return [*series, {"series": WINDOW + pod("a", **v), "values": f"{DRIFT_WINDOW}x{minutes}"}]


def drifted(feature: str | None = None) -> list[dict[str, str]]:
    return [{"namespace": NS, "model_version": "v1", **({"feature": feature} if feature else {})}]


CASES += [
    Case("drift: live values as in training for 3h", drift_pod((25, 25, 25, 25), (50, 50), (50, 50), 180), "3h"),
    Case("drift: size shifted to its lowest bin (PSI 0.88)", drift_pod((70, 10, 10, 10), (50, 50), (50, 50), 120),
         "2h", {"ModelshipInputDrift": drifted("size")}),
    Case("drift: a bin training filled is empty now (the floor: PSI 1.9)",
         drift_pod((34, 33, 33, 0), (50, 50), (50, 50), 120), "2h", {"ModelshipInputDrift": drifted("size")}),
    Case("drift: the output shifted (PSI 1.0)", drift_pod((25, 25, 25, 25), (50, 50), (90, 10), 120), "2h",
         {"ModelshipOutputDrift": drifted()}),
    Case("drift: shifted but 600 values an hour, under the 1000 the threshold is calibrated for",
         drift_pod((7, 1, 1, 1), (5, 5), (9, 1), 120), "2h"),
    Case("drift: not yet for 15 min after a shift", drift_pod((70, 10, 10, 10), (50, 50), (50, 50), 120), "12m"),
]  # fmt: skip


# -- live quality (POST /feedback's labels): the service exports the verdict, the alert adds a min-labels guard ----
def quality(p: str, degraded: int, labels: int, minutes: int, version: str = "v1") -> list[dict[str, str]]:
    return [
        {"series": f"{LIVE_QUALITY}_degraded" + pod(p, model_version=version, metric="rmse"),
         "values": f"{degraded}x{minutes}"},
        {"series": f"{LIVE_QUALITY}_labels" + pod(p, model_version=version), "values": f"{labels}x{minutes}"},
    ]  # fmt: skip


QUALITY_CASES = [
    Case("live quality degraded on enough labels for 1h", quality("a", 1, 500, 70) + quality("b", 0, 500, 70),
         "1h", {"ModelshipLiveQualityDegraded": [{"namespace": NS, "model_version": "v1"}]}),
    Case("live quality healthy", quality("a", 0, 500, 70), "1h"),
    Case("live quality degraded on too few labels is silent", quality("a", 1, QUALITY_MIN_LABELS - 1, 70), "1h"),
    Case("live quality degraded for 10 min is not yet a ticket", quality("a", 1, 500, 10), "10m"),
]  # fmt: skip
CASES += QUALITY_CASES


def unit_test_file(case: Case) -> dict[str, Any]:
    checks = [
        {
            "eval_time": case.at,
            "alertname": name,
            "exp_alerts": [expected(name, ls) for ls in case.firing.get(name, [])],
        }
        for name in ALERTS
    ]
    return {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "30s",
        "tests": [{"interval": "1m", "input_series": case.series, "alert_rule_test": checks}],
    }


@pytest.mark.needs_engine
def test_promtool_accepts_the_rendered_rules(tmp_path: Path) -> None:
    result = run_promtool("check", "rules", str(write_rule_file(RULES, tmp_path / "rules.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in RULES['groups'])} rules found" in result.stdout


def test_every_alert_has_a_case_that_fires_it() -> None:
    fired = {name for case in CASES for name in case.firing}
    assert fired == set(ALERTS)


def test_every_alert_has_severity_summary_and_its_own_runbook_section() -> None:
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    headings = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    for name, rule in ALERTS.items():
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert rule["annotations"]["summary"], name
        url, anchor = rule["annotations"]["runbook_url"].split("#")
        assert url.endswith("docs/runbook.md") and anchor == name.lower() and anchor in headings, name


@pytest.mark.needs_engine
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_alert_behaviour(case: Case, tmp_path: Path) -> None:
    write_rule_file(RULES, tmp_path / "rules.yml")
    (tmp_path / "test.yml").write_text(yaml.safe_dump(unit_test_file(case), sort_keys=False))
    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
