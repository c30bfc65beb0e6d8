"""The SLO verdict: profile parsing and every check, with figures built by hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from loadtest.slo import (
    EndpointLimits,
    Figures,
    ProfileError,
    SloProfile,
    evaluate,
    load_profile,
    load_profiles,
    parse_profile,
    render_text,
)

PROFILE = SloProfile(
    name="t", users=10, spawn_rate=5, duration_s=10, p95_ms=100, p99_ms=200, max_failure_ratio=0.01, min_rps=50,
    endpoints={"POST /predict [batch]": EndpointLimits(p95_ms=300, p99_ms=500)},
)  # fmt: skip
RAW = {"users": 10, "spawn_rate": 5, "duration_s": 10, "p95_ms": 100, "p99_ms": 200,
       "max_failure_ratio": 0.01, "min_rps": 50}  # fmt: skip


def figures(name: str = "Aggregated", method: str = "", **changes: float) -> Figures:
    base = Figures(name=name, method=method, requests=1000, failures=0, rps=80.0, avg_ms=20, min_ms=2,
                   max_ms=150, p50_ms=15, p90_ms=60, p95_ms=80, p99_ms=150)  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


BATCH = figures("/predict [batch]", "POST", requests=20, p95_ms=250, p99_ms=400)


def failed(total: Figures, endpoints: list[Figures] | None = None) -> list[str]:
    return [c.name for c in evaluate(PROFILE, total, endpoints if endpoints is not None else [BATCH]).failed]


def test_within_every_limit_passes() -> None:
    verdict = evaluate(PROFILE, figures(), [BATCH])
    assert verdict.passed
    assert {c.name for c in verdict.checks} >= {"failure ratio", "throughput", "p95 latency", "p99 latency"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"failures": 11}, ["failure ratio"]),  # 1.1% > 1%
        ({"rps": 49.9}, ["throughput"]),
        ({"p95_ms": 101}, ["p95 latency"]),
        ({"p99_ms": 201}, ["p99 latency"]),
        ({"failures": 500, "p99_ms": 900}, ["failure ratio", "p99 latency"]),
    ],
)
def test_each_limit_fails_on_its_own(changes: dict[str, float], expected: list[str]) -> None:
    assert failed(figures(**changes)) == expected


def test_limits_are_inclusive() -> None:
    assert failed(figures(failures=10, rps=50, p95_ms=100, p99_ms=200)) == []


def test_no_requests_at_all_fails_even_with_zero_failures() -> None:
    total = figures(requests=0, failures=0, rps=0, p95_ms=0, p99_ms=0)
    assert "requests" in failed(total)


def test_endpoint_limit_applies_to_that_endpoint() -> None:
    slow_batch = replace(BATCH, p99_ms=501)
    assert failed(figures(), [slow_batch]) == ["POST /predict [batch] p99"]


def test_endpoint_with_a_limit_but_no_traffic_fails() -> None:
    assert failed(figures(), []) == ["POST /predict [batch] requests"]


def test_shipped_profiles_load_and_tighten_towards_prod() -> None:
    profiles = load_profiles()
    assert set(profiles) == {"local", "dev", "staging", "prod"}
    local, prod = profiles["local"], profiles["prod"]
    assert prod.users > local.users and prod.min_rps > local.min_rps
    assert prod.p99_ms <= local.p99_ms and prod.max_failure_ratio <= local.max_failure_ratio


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ProfileError, match="known: dev, local, prod, staging"):
        load_profile("qa")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({k: v for k, v in RAW.items() if k != "min_rps"}, "missing \\['min_rps'\\]"),
        (RAW | {"p95": 1}, "unknown \\['p95'\\]"),
        (RAW | {"users": True}, "users must be a positive integer"),
        (RAW | {"users": 0}, "users must be a positive integer"),
        (RAW | {"p99_ms": "fast"}, "p99_ms must be a number"),
        (RAW | {"max_failure_ratio": 5}, "ratio in \\[0, 1\\]"),
        (RAW | {"duration_s": 0}, "must be positive"),
        (RAW | {"endpoints": {"POST /predict": {"p90_ms": 1}}}, "unknown keys"),
    ],
)
def test_malformed_profiles_are_rejected(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile("bad", raw)


def test_profiles_file_can_be_replaced(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text("[profiles.only]\n" + "\n".join(f"{k} = {v}" for k, v in RAW.items()) + "\n")
    assert load_profile("only", path).min_rps == 50


def test_duration_override_keeps_the_limits() -> None:
    short = PROFILE.with_duration(3)
    assert short.duration_s == 3 and short.p99_ms == PROFILE.p99_ms and short.endpoints == PROFILE.endpoints
    assert PROFILE.with_duration(None) is PROFILE
    with pytest.raises(ProfileError):
        PROFILE.with_duration(0)


def test_text_verdict_shows_the_failed_check() -> None:
    total = figures(p99_ms=350)
    verdict = evaluate(PROFILE, total, [BATCH])
    summary = {
        "profile": {"name": "t", "users": 10},
        "host": "http://x",
        "model": {"version": "house-price-abc"},
        "duration_s": 10.0,
        "totals": {"name": "Aggregated", "method": "", **{k: getattr(total, k) for k in
                   ("requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms")}},
        "endpoints": [],
        "verdict": {"passed": verdict.passed, "checks": [c.__dict__ for c in verdict.checks]},
        "errors": [{"method": "POST", "name": "/predict", "error": "status 500", "occurrences": 3}],
    }  # fmt: skip
    text = render_text(summary)
    assert text.startswith("modelship load check: FAIL")
    assert "FAIL  p99 latency" in text and "350 ms <= 200 ms" in text
    assert "3 x POST /predict: status 500" in text
    assert len(text.splitlines()) < 40  # one screen
