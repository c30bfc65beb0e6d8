"""SLO profiles, the verdict over Locust's final statistics, and the quitting listener that gates.

This module must stay importable without Locust: `import locust` monkey-patches the whole process
with gevent, and the pipelines import `loadtest.run` (which imports this) in a normal process.
Locust objects are therefore only duck-typed here.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
SUMMARY_FILE = "summary.json"
VERDICT_FILE = "verdict.txt"
TIMESERIES_FILE = "timeseries.csv"
EXIT_PASS = 0
EXIT_SLO_FAILED = 1


class ProfileError(ValueError):
    """A profile is missing, or its file does not match the expected shape."""


@dataclass(frozen=True)
class EndpointLimits:
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class SloProfile:
    name: str
    users: int
    spawn_rate: float
    duration_s: float
    p95_ms: float
    p99_ms: float
    max_failure_ratio: float
    min_rps: float
    endpoints: dict[str, EndpointLimits] = field(default_factory=dict)

    def with_duration(self, duration_s: float | None) -> SloProfile:
        """The same profile with another run time (quick local runs, tests)."""
        if duration_s is None:
            return self
        if duration_s <= 0:
            raise ProfileError(f"duration must be positive, got {duration_s}")
        return replace(self, duration_s=float(duration_s))


_NUMBER_FIELDS = ("spawn_rate", "duration_s", "p95_ms", "p99_ms", "max_failure_ratio", "min_rps")


def _number(name: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"profile {name!r}: {key} must be a number, got {value!r}")
    if value < 0:
        raise ProfileError(f"profile {name!r}: {key} must be >= 0, got {value!r}")
    return float(value)


def _endpoint_limits(name: str, raw: object) -> dict[str, EndpointLimits]:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"profile {name!r}: endpoints must be a table")
    limits: dict[str, EndpointLimits] = {}
    for endpoint, values in raw.items():
        unknown = set(values) - {"p95_ms", "p99_ms"}
        if unknown:
            raise ProfileError(f"profile {name!r}, endpoint {endpoint!r}: unknown keys {sorted(unknown)}")
        limits[endpoint] = EndpointLimits(
            **{key: _number(name, f"{endpoint}.{key}", value) for key, value in values.items()}
        )
    return limits


def parse_profile(name: str, raw: Mapping[str, Any]) -> SloProfile:
    """Validate one `[profiles.<name>]` table into a typed profile."""
    expected = {"users", *_NUMBER_FIELDS}
    missing = expected - set(raw)
    unknown = set(raw) - expected - {"endpoints"}
    if missing or unknown:
        raise ProfileError(f"profile {name!r}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    users = raw["users"]
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise ProfileError(f"profile {name!r}: users must be a positive integer, got {users!r}")
    numbers = {key: _number(name, key, raw[key]) for key in _NUMBER_FIELDS}
    if numbers["max_failure_ratio"] > 1:
        raise ProfileError(f"profile {name!r}: max_failure_ratio is a ratio in [0, 1]")
    if numbers["duration_s"] <= 0 or numbers["spawn_rate"] <= 0:
        raise ProfileError(f"profile {name!r}: duration_s and spawn_rate must be positive")
    endpoints = _endpoint_limits(name, raw.get("endpoints", {}))
    return SloProfile(name=name, users=users, endpoints=endpoints, **numbers)


def load_profiles(path: Path | None = None) -> dict[str, SloProfile]:
    """Read every profile of a profiles file (default: loadtest/profiles.toml)."""
    path = path or PROFILES_FILE
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    tables = data.get("profiles")
    if not isinstance(tables, Mapping) or not tables:
        raise ProfileError(f"{path}: no [profiles.<name>] tables")
    return {name: parse_profile(name, raw) for name, raw in tables.items()}


def load_profile(name: str, path: Path | None = None) -> SloProfile:
    """Read one profile by name; the error names the profiles that exist."""
    profiles = load_profiles(path)
    if name not in profiles:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


@dataclass(frozen=True)
class Figures:
    """Final figures of one endpoint (or of all of them, name "Aggregated")."""

    name: str
    method: str
    requests: int
    failures: int
    rps: float
    avg_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else (1.0 if self.failures else 0.0)

    @property
    def label(self) -> str:
        return self.name if self.name == "Aggregated" else f"{self.method} {self.name}".strip()


def figures_from_entry(entry: Any) -> Figures:
    """Exact final figures from a Locust StatsEntry (its full histogram, not the CSV)."""

    def pct(quantile: float) -> float:
        return float(entry.get_response_time_percentile(quantile)) if entry.num_requests else 0.0

    return Figures(
        name=str(entry.name),
        method=str(entry.method or ""),
        requests=int(entry.num_requests),
        failures=int(entry.num_failures),
        rps=float(entry.total_rps),
        avg_ms=float(entry.avg_response_time),
        min_ms=float(entry.min_response_time or 0),
        max_ms=float(entry.max_response_time),
        p50_ms=pct(0.50),
        p90_ms=pct(0.90),
        p95_ms=pct(0.95),
        p99_ms=pct(0.99),
    )


@dataclass(frozen=True)
class Check:
    name: str
    observed: float
    limit: float
    op: str  # "<=" or ">="
    passed: bool
    unit: str = ""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def _at_most(name: str, observed: float, limit: float, unit: str) -> Check:
    return Check(name, observed, limit, "<=", observed <= limit, unit)


def _at_least(name: str, observed: float, limit: float, unit: str) -> Check:
    return Check(name, observed, limit, ">=", observed >= limit, unit)


def _endpoint_checks(profile: SloProfile, endpoints: Iterable[Figures]) -> list[Check]:
    by_label = {figures.label: figures for figures in endpoints}
    checks: list[Check] = []
    for label, limits in sorted(profile.endpoints.items()):
        figures = by_label.get(label)
        if figures is None or figures.requests == 0:
            # A limit on an endpoint that got no traffic measured nothing: that is not a pass.
            checks.append(Check(f"{label} requests", 0, 1, ">=", False))
            continue
        if limits.p95_ms is not None:
            checks.append(_at_most(f"{label} p95", figures.p95_ms, limits.p95_ms, "ms"))
        if limits.p99_ms is not None:
            checks.append(_at_most(f"{label} p99", figures.p99_ms, limits.p99_ms, "ms"))
    return checks


def evaluate(profile: SloProfile, total: Figures, endpoints: Iterable[Figures]) -> Verdict:
    """Apply a profile to final figures. Every limit is a check; the run passes if all pass."""
    checks = [
        _at_least("requests", total.requests, 1, ""),
        _at_most("failure ratio", total.failure_ratio, profile.max_failure_ratio, "ratio"),
        _at_least("throughput", total.rps, profile.min_rps, "req/s"),
        _at_most("p95 latency", total.p95_ms, profile.p95_ms, "ms"),
        _at_most("p99 latency", total.p99_ms, profile.p99_ms, "ms"),
        *_endpoint_checks(profile, endpoints),
    ]
    return Verdict(passed=all(check.passed for check in checks), checks=checks)


def _format_value(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "req/s":
        return f"{value:,.1f} req/s"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:,.0f}"


def render_text(summary: Mapping[str, Any]) -> str:
    """The one-screen verdict: headline, per-endpoint table, checks, top errors."""
    verdict = summary["verdict"]
    totals = summary["totals"]
    profile = summary["profile"]
    model = summary.get("model") or {}
    lines = [
        f"modelship load check: {'PASS' if verdict['passed'] else 'FAIL'}  "
        f"(profile {profile['name']}, {summary['host']}, model {model.get('version', 'unknown')})",
        f"{profile['users']} users for {summary['duration_s']:.0f} s: {totals['requests']:,} requests, "
        f"{totals['rps']:,.1f} req/s, {totals['failures']:,} failures "
        f"({_format_value(_ratio(totals), 'ratio')})",
        "",
        f"{'endpoint':<30}{'reqs':>8}{'fail':>6}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>8}  ms",
    ]
    for row in [*summary["endpoints"], totals]:
        label = row["name"] if row["name"] == "Aggregated" else f"{row['method']} {row['name']}"
        lines.append(
            f"{label[:29]:<30}{row['requests']:>8}{row['failures']:>6}{row['p50_ms']:>7.0f}"
            f"{row['p95_ms']:>7.0f}{row['p99_ms']:>7.0f}{row['max_ms']:>8.0f}"
        )
    lines += ["", "checks"]
    for check in verdict["checks"]:
        lines.append(
            f"  {'pass' if check['passed'] else 'FAIL'}  {check['name']:<34}"
            f"{_format_value(check['observed'], check['unit']):>14} {check['op']} "
            f"{_format_value(check['limit'], check['unit'])}"
        )
    errors = summary.get("errors", [])[:5]
    if errors:
        lines += ["", "top errors"]
        lines += [f"  {e['occurrences']:>6} x {e['method']} {e['name']}: {e['error'][:80]}" for e in errors]
    return "\n".join(lines) + "\n"


def _ratio(totals: Mapping[str, Any]) -> float:
    requests = int(totals["requests"])
    return int(totals["failures"]) / requests if requests else 0.0


def build_summary(
    environment: Any, profile: SloProfile, model: Mapping[str, Any] | None
) -> tuple[dict[str, Any], Verdict]:
    """Summary dict and verdict from the final in-memory stats of a Locust environment."""
    stats = environment.stats
    total = figures_from_entry(stats.total)
    endpoints = sorted((figures_from_entry(e) for e in stats.entries.values()), key=lambda f: f.label)
    verdict = evaluate(profile, total, endpoints)
    started = float(stats.total.start_time or 0.0)
    ended = float(stats.total.last_request_timestamp or started)
    errors = sorted(stats.errors.values(), key=lambda e: -e.occurrences)
    summary = {
        "schema_version": 1,
        "profile": asdict(profile),
        "host": environment.host,
        "model": dict(model) if model else None,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat() if started else None,
        "duration_s": max(ended - started, 0.0),
        "totals": asdict(total),
        "endpoints": [asdict(figures) for figures in endpoints],
        "errors": [
            {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences} for e in errors
        ],
        "verdict": {"passed": verdict.passed, "checks": [asdict(check) for check in verdict.checks]},
        "exit_code": EXIT_PASS if verdict.passed else EXIT_SLO_FAILED,
    }
    return summary, verdict


def on_quitting(environment: Any, model: Mapping[str, Any] | None = None) -> Verdict | None:
    """Quitting listener body: judge the final stats, write summary + verdict, set the exit code."""
    options = environment.parsed_options
    if options is None or not getattr(options, "slo_profile", None):
        return None  # plain `locust -f` without a profile: Locust's own exit code applies
    profile_file = Path(options.slo_profiles_file) if options.slo_profiles_file else None
    profile = load_profile(options.slo_profile, profile_file).with_duration(options.slo_duration_s)
    summary, verdict = build_summary(environment, profile, model)
    out_dir = Path(options.slo_out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / VERDICT_FILE).write_text(render_text(summary))
    environment.process_exit_code = summary["exit_code"]
    log.info("SLO verdict for profile %s: %s", profile.name, "pass" if verdict.passed else "fail")
    return verdict
