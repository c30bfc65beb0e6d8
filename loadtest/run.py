"""`run_loadcheck`: one Locust SLO check against a URL, as a typed result (CLI and pipelines share it).

Locust runs as a subprocess rather than through its library API: importing locust monkey-patches the
calling process with gevent, which the pipelines and pytest must not inherit, and the subprocess's exit
code is the same gate a person gets from `locust` itself.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest import slo
from loadtest.timeline import read_csv

log = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPO_ROOT = Path(__file__).resolve().parent.parent
HTML_FILE = "report.html"
PLOT_FILE = "latency.png"
LOG_FILE = "locust.log"
API_KEY_ENV = "MODELSHIP_LOADTEST_API_KEY"  # read by the locustfile; never a flag, flags show in `ps`
PREFLIGHT_TIMEOUT_S = 5.0
STARTUP_GRACE_S = 60.0  # Locust start, user stop and report writing, on top of the run time


class LoadcheckError(RuntimeError):
    """Locust did not produce a verdict (crash, bad URL, bad profile file): not a pass, not a fail."""


@dataclass(frozen=True)
class LoadFigures:
    requests: int
    failures: int
    failure_ratio: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class LocustRunResult:
    passed: bool
    profile: str
    url: str
    exit_code: int
    model_version: str | None
    figures: LoadFigures
    failed_checks: list[str]
    verdict_text: str
    summary_path: Path
    html_path: Path
    plot_path: Path
    timeseries_path: Path
    log_path: Path


def _locust_command(url: str, profile: slo.SloProfile, out_dir: Path, profiles_file: Path | None) -> list[str]:
    run_time = max(math.ceil(profile.duration_s), 1)
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", url,
        "--users", str(profile.users),
        "--spawn-rate", f"{profile.spawn_rate:g}",
        "--run-time", f"{run_time}s",
        "--stop-timeout", "2",
        "--html", str(out_dir / HTML_FILE),
        "--only-summary",
        "--loglevel", "WARNING",
        "--slo-profile", profile.name,
        "--slo-out-dir", str(out_dir),
        "--slo-duration-s", f"{profile.duration_s:g}",
    ]  # fmt: skip
    if profiles_file is not None:
        command += ["--slo-profiles-file", str(profiles_file)]
    return command


def _preflight(url: str) -> None:
    """Fail in a second, not after the whole profile, when nothing answers at `url`."""
    health = url.rstrip("/") + "/health"
    if not health.startswith(("http://", "https://")):
        raise LoadcheckError(f"{url!r} is not an http(s) URL")
    try:
        with urllib.request.urlopen(health, timeout=PREFLIGHT_TIMEOUT_S) as response:  # noqa: S310 - scheme checked
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise LoadcheckError(f"{health} does not answer ({exc}); is the service running?") from exc


def _figures(totals: dict[str, float]) -> LoadFigures:
    requests = int(totals["requests"])
    failures = int(totals["failures"])
    return LoadFigures(
        requests=requests,
        failures=failures,
        failure_ratio=failures / requests if requests else 0.0,
        rps=float(totals["rps"]),
        p50_ms=float(totals["p50_ms"]),
        p95_ms=float(totals["p95_ms"]),
        p99_ms=float(totals["p99_ms"]),
        max_ms=float(totals["max_ms"]),
    )


def run_loadcheck(
    url: str,
    profile: str,
    out_dir: Path,
    duration_s: float | None = None,
    *,
    profiles_file: Path | None = None,
    api_key: str | None = None,
) -> LocustRunResult:
    """Run the Locust personas against `url` under an SLO profile and judge the run.

    Args:
        url: base URL of a running modelship service, e.g. http://127.0.0.1:8000.
        profile: name of a profile in loadtest/profiles.toml (local, dev, staging, prod).
        out_dir: folder for summary.json, verdict.txt, report.html, latency.png, timeseries.csv.
        duration_s: run time instead of the profile's (quick checks, tests).
        profiles_file: another profiles file, for tests and experiments.
        api_key: sent as `Authorization: Bearer` to a service with API keys (scopes predict and read);
            default: the MODELSHIP_LOADTEST_API_KEY environment variable.

    Returns:
        The verdict, the headline figures and the paths of every output.

    Raises:
        ProfileError: the profile does not exist or is malformed.
        LoadcheckError: nothing answers GET /health at `url`, or Locust ended without writing a verdict.
    """
    selected = slo.load_profile(profile, profiles_file).with_duration(duration_s)
    _preflight(url)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / slo.SUMMARY_FILE
    summary_path.unlink(missing_ok=True)  # a stale summary must never pass for this run's
    command = _locust_command(url.rstrip("/"), selected, out_dir, profiles_file)
    env = (
        os.environ
        | ({API_KEY_ENV: api_key} if api_key else {})
        | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    )
    log.info("locust: %s users, %.0f s against %s", selected.users, selected.duration_s, url)
    log_path = out_dir / LOG_FILE
    try:
        with log_path.open("w") as log_file:
            completed = subprocess.run(
                command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                timeout=selected.duration_s + STARTUP_GRACE_S, check=False,
            )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise LoadcheckError(f"locust did not finish within {exc.timeout:.0f} s; see {log_path}") from exc
    if not summary_path.exists():
        raise LoadcheckError(f"locust exited {completed.returncode} without a verdict; see {log_path}")
    summary = json.loads(summary_path.read_text())
    if completed.returncode != summary["exit_code"]:
        raise LoadcheckError(f"locust exit code {completed.returncode} != verdict {summary['exit_code']}")
    return _result(summary, selected, url, out_dir, completed.returncode)


def _result(
    summary: dict[str, Any], profile: slo.SloProfile, url: str, out_dir: Path, exit_code: int
) -> LocustRunResult:
    from loadtest.plot import plot_latency  # matplotlib is slow to import; only needed here

    timeseries_path = out_dir / slo.TIMESERIES_FILE
    model = summary.get("model") or {}
    title = f"{model.get('version', 'unknown model')} - profile {profile.name} - {url}"
    plot_path = plot_latency(read_csv(timeseries_path), profile, title, out_dir / PLOT_FILE)
    return LocustRunResult(
        passed=bool(summary["verdict"]["passed"]),
        profile=profile.name,
        url=url,
        exit_code=exit_code,
        model_version=model.get("version"),
        figures=_figures(summary["totals"]),
        failed_checks=[c["name"] for c in summary["verdict"]["checks"] if not c["passed"]],
        verdict_text=(out_dir / slo.VERDICT_FILE).read_text(),
        summary_path=out_dir / slo.SUMMARY_FILE,
        html_path=out_dir / HTML_FILE,
        plot_path=plot_path,
        timeseries_path=timeseries_path,
        log_path=out_dir / LOG_FILE,
    )
