"""Post-deploy verification shared by release and promote: smoke, then the load check.

Each verdict is attached to the update it judged (`Stack.annotate`), so `history` shows it and
`rollback` never returns to an update that failed one.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.loadcheck import LoadcheckStageResult, check_profile, loadcheck
from pipelines.settings import PipelineSettings, get_settings
from pipelines.smoke import SmokeResult, smoke
from pipelines.targets.base import FAIL, LOADCHECK, PASS, SMOKE, Stack

log = logging.getLogger(__name__)

SmokeFn = Callable[[str, "str | None"], SmokeResult]
LoadcheckFn = Callable[[str, str, Path, "float | None"], LoadcheckStageResult]


def _smoke(url: str, expected_version: str | None) -> SmokeResult:
    return smoke(url, expected_version, timeout_s=get_settings().http_timeout_s, api_key=_api_key())


def _loadcheck(url: str, profile: str, out_dir: Path, duration_s: float | None) -> LoadcheckStageResult:
    return loadcheck(url, profile, out_dir, duration_s, api_key=_api_key())


def _api_key() -> str | None:
    settings = get_settings()
    return settings.api_key.get_secret_value() if settings.api_key else None


@dataclass(frozen=True)
class Checkers:
    """The checks run after a deploy; tests replace them to drive the stage logic."""

    smoke: SmokeFn = field(default=_smoke)
    loadcheck: LoadcheckFn = field(default=_loadcheck)


@dataclass(frozen=True)
class VerifyOptions:
    profile: str | None  # the loadtest profile; None skips the load check
    out_dir: Path
    duration_s: float | None = None


def options_from_args(args: argparse.Namespace, settings: PipelineSettings, stack: str) -> VerifyOptions:
    """The `--no-loadcheck/--profile/--duration/--reports` of release and promote (`commands.verify_options`)."""
    profile = None if args.no_loadcheck else (args.profile or ("local" if args.target == "local" else stack))
    if profile is not None:
        check_profile(profile)  # before anything is deployed
    out = args.reports or settings.reports_dir / "loadcheck" / stack
    return VerifyOptions(profile=profile, out_dir=out, duration_s=args.duration)


@dataclass(frozen=True)
class VerifyResult:
    passed: bool
    failed_check: str | None
    smoke: SmokeResult
    loadcheck: LoadcheckStageResult | None


def verify(
    handle: Stack,
    update: int | None,
    url: str,
    expected_version: str,
    options: VerifyOptions,
    checkers: Checkers | None = None,
) -> VerifyResult:
    """Smoke-test, then load-check a fresh deployment, recording each verdict on its update."""
    run = checkers or Checkers()

    def record(key: str, passed: bool) -> None:
        if update is not None:
            handle.annotate(update, key, PASS if passed else FAIL)

    smoke_result = run.smoke(url, expected_version)
    record(SMOKE, smoke_result.passed)
    if not smoke_result.passed:
        return VerifyResult(False, SMOKE, smoke_result, None)
    if options.profile is None:
        return VerifyResult(True, None, smoke_result, None)
    load_result = run.loadcheck(url, options.profile, options.out_dir, options.duration_s)
    record(LOADCHECK, load_result.passed)
    return VerifyResult(load_result.passed, None if load_result.passed else LOADCHECK, smoke_result, load_result)
