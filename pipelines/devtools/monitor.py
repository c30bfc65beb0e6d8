"""A real Prometheus (Debian's `prometheus`) scraping a local service with the stacks' own rules: `make monitor`.

    python -m pipelines.devtools.monitor --target 127.0.0.1:8000 --port 9090

The rules come from the same generator as the PrometheusRule of staging and prod (infra.components.alerts),
with the thresholds declared in Pulumi.yaml; only the label matchers differ (no namespace locally). The
alert drill in tests/monitoring builds its Prometheus with this module too, with short thresholds.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from infra.components import alerts
from infra.components.monitoring import JOB
from service.settings import Settings

log = logging.getLogger("pipelines.devtools.monitor")
REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = "modelship-rules.yml"


def project_defaults() -> dict[str, object]:
    """Pulumi.yaml's declared defaults: the one place thresholds are set."""
    config = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    return {key: spec["default"] for key, spec in config.items()}


def local_rule_settings(evaluation_interval: str = "15s") -> alerts.RuleSettings:
    """The stacks' rules for a Prometheus that scrapes one local service (job="modelship", no namespace)."""
    d = project_defaults()
    return alerts.RuleSettings(
        matchers=f'job="{JOB}"',
        runbook_url=str(d["monitoring.runbookUrl"]),
        availability_slo=float(str(d["monitoring.availabilitySlo"])),
        latency_slo=float(str(d["monitoring.latencySlo"])),
        latency_threshold_s=float(str(d["monitoring.latencyThresholdSeconds"])),
        oldest_unflushed_s=float(str(d["monitoring.oldestUnflushedSeconds"])),
        backlog_for=str(d["monitoring.backlogFor"]),
        spool_max_bytes=Settings.model_fields["spool_max_bytes"].default,  # a stack setting: its default is there
        spool_percent=int(str(d["monitoring.spoolPercent"])),
        rollout_window=str(d["monitoring.rolloutWindow"]),
        evaluation_interval=evaluation_interval,
    )


def write_rules(rules: alerts.RuleSettings, path: Path) -> Path:
    path.write_text(yaml.safe_dump({"groups": alerts.rule_groups(rules)}, sort_keys=False))
    return path


def write_config(workdir: Path, target: str, rules: alerts.RuleSettings, scrape_interval: str) -> Path:
    """prometheus.yml and the rule file next to it; returns the config's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_rules(rules, workdir / RULES_FILE)
    config = {
        # the timeout as long as the interval: a busy service answers /metrics late rather than not at all
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": rules.evaluation_interval,
        },
        "rule_files": [RULES_FILE],
        "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prometheus_command(config: Path, data_dir: Path, listen: str) -> list[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("no prometheus on PATH: run `make prometheus` (apt-get install prometheus)")
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={listen}",
        "--storage.tsdb.retention.time=1d",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.devtools.monitor", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:8000", help="host:port of the service `make up` runs")
    parser.add_argument("--port", type=int, default=9090, help="Prometheus listens on 127.0.0.1:PORT")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "reports" / "monitor")
    parser.add_argument("--scrape-interval", default="5s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rules = local_rule_settings(evaluation_interval="5s")
    config = write_config(args.workdir, args.target, rules, args.scrape_interval)
    listen = f"127.0.0.1:{args.port}"
    command = prometheus_command(config, args.workdir / "data", listen)
    # Debian's build ships the classic UI only (no React bundle): the alerts page is /classic/alerts.
    log.info(
        "Prometheus UI: http://%s/classic/alerts (scraping http://%s/metrics, rules %s)",
        listen,
        args.target,
        config.parent / RULES_FILE,
    )
    os.execv(command[0], command)  # noqa: S606 - a fixed argument list; Prometheus takes over the terminal
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
