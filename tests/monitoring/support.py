"""Shared pieces of the monitoring tests: promtool, the rules prod renders, metric names in PromQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.infra.support import run_stack

# `name{` - the generator writes every selector with braces (infra/components/alerts.py says so).
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
# Series Prometheus makes itself for every target (not exported by the service).
PROMETHEUS_SERIES = {"up"}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: `make prometheus` installs Debian's prometheus package"
    return path


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def rendered_rules(stack: str = "prod") -> dict[str, Any]:
    """The PrometheusRule's spec the Pulumi program declares for STACK."""
    spec: dict[str, Any] = run_stack(stack).one("PrometheusRule").inputs["spec"]
    return spec


def write_rule_file(groups: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(groups, sort_keys=False))
    return path


def metric_names(expr: str) -> set[str]:
    return set(_SELECTOR.findall(expr))


def rule_metrics(groups: dict[str, Any]) -> set[str]:
    """Metrics the rules read, minus the series they record themselves."""
    rules = [r for g in groups["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    return {m for r in rules for m in metric_names(r["expr"])} - recorded
