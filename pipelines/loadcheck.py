"""Stage `loadcheck`: run the environment's Locust profile headless and enforce its SLOs."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from pipelines import commands
from pipelines.errors import ConfigError
from pipelines.settings import PipelineSettings
from pipelines.targets.base import LOADCHECK

log = logging.getLogger(__name__)


def check_profile(profile: str) -> None:
    """Fail early (before a deploy) on a profile loadtest/profiles.toml does not define."""
    from loadtest.slo import ProfileError, load_profile

    try:
        load_profile(profile)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc


@dataclass(frozen=True)
class LoadcheckStageResult:
    url: str
    profile: str
    passed: bool
    verdict: str
    summary_path: Path | None
    html_path: Path | None


def loadcheck(
    url: str, profile: str, out_dir: Path, duration_s: float | None = None, *, api_key: str | None = None
) -> LoadcheckStageResult:
    """Load-test URL with loadtest/'s PROFILE and judge it against that profile's SLOs.

    Args:
        url: base URL of the service under test.
        profile: a profile of loadtest/profiles.toml, usually the environment (local, dev, staging, prod).
        out_dir: where the summary JSON and the HTML report go.
        duration_s: override the profile's duration (tests use a few seconds).
        api_key: for stacks with auth.required (sent by every Locust user).

    Returns:
        LoadcheckStageResult with the verdict and the report paths; `passed` is False when an SLO was missed.
    """
    from loadtest.run import LoadcheckError, run_loadcheck  # lazily: matplotlib and friends are slow

    check_profile(profile)
    try:
        outcome = run_loadcheck(url, profile, Path(out_dir), duration_s=duration_s, api_key=api_key)
    except LoadcheckError as exc:
        # No verdict is not a pass: after a deploy, an unjudged release is treated as a failed one.
        log.error("loadcheck produced no verdict: %s", exc)
        return LoadcheckStageResult(url, profile, False, f"no verdict: {exc}", None, None)
    log.info("loadcheck %s (%s): %s", url, profile, "pass" if outcome.passed else "fail")
    return LoadcheckStageResult(
        url=url,
        profile=profile,
        passed=bool(outcome.passed),
        verdict=str(outcome.verdict_text),
        summary_path=Path(outcome.summary_path) if outcome.summary_path else None,
        html_path=Path(outcome.html_path) if outcome.html_path else None,
    )


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    commands.url_option(parser)
    commands.stack_options(parser, required=False)
    commands.loadcheck_options(parser)


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    url, handle = commands.stack_url(args, settings)
    profile = args.profile or ("local" if args.target == "local" or not args.stack else args.stack)
    out = args.reports or settings.reports_dir / "loadcheck" / (args.stack or profile)
    result = loadcheck(url, profile, out, args.duration, api_key=commands.api_key(settings))
    commands.annotate_current(handle, LOADCHECK, result.passed)
    commands.out(result.verdict)
    commands.out(f"summary={result.summary_path}\nhtml={result.html_path}")
    return commands.finish(args, "loadcheck", result, result.passed)


STAGE = commands.Stage("loadcheck", "run the Locust SLO check against a service", _add_arguments, _run)
