"""One handler per CLI stage: turn arguments into a stage call, print the result, write the record."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from model.keyvalue import parse_pairs
from model.manifest import Manifest
from pipelines.baseline import stack_baseline
from pipelines.deploy import deploy
from pipelines.destroy import destroy
from pipelines.errors import ConfigError
from pipelines.gate import GatePolicy, gate
from pipelines.history import history
from pipelines.loadcheck import check_profile, loadcheck
from pipelines.promote import promote
from pipelines.release import TrainSpec, release
from pipelines.report import git_head, write_record
from pipelines.rollback import rollback
from pipelines.settings import PipelineSettings
from pipelines.smoke import smoke
from pipelines.targets import Stack, get_target
from pipelines.targets.base import FAIL, LOADCHECK, PASS, SMOKE, deployed_update, reachable_url
from pipelines.train import train
from pipelines.verify import VerifyOptions


def _out(text: str) -> None:
    print(text, flush=True)


def _stream(line: str) -> None:
    print(line.rstrip("\n"), file=sys.stderr, flush=True)


def _pairs(items: list[str], what: str, parse: bool = True) -> dict[str, Any]:
    """KEY=VALUE arguments; values are JSON when they parse (numbers, booleans, null) unless parse=False."""
    try:
        return parse_pairs(items, what, parse_json=parse)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _raw_pairs(items: list[str]) -> dict[str, str]:
    """`--config` values stay strings: Pulumi config is text ("false", "3")."""
    return {key: str(value) for key, value in _pairs(items, "--config", parse=False).items()}


def _finish(args: argparse.Namespace, stage: str, result: Any, passed: bool) -> bool:
    if args.record:
        write_record(args.record, stage, result, passed)
    return passed


def default_message(action: str) -> str:
    """What the update history shows as the message: the action, then the PR or commit that asked for it."""
    sha = os.environ.get("GITHUB_SHA") or git_head() or ""
    ref = os.environ.get("GITHUB_REF", "")
    where = f"PR #{ref.split('/')[2]} " if ref.startswith("refs/pull/") else ""
    return f"{action} ({where}git {sha[:12]})" if sha else action


def _message(args: argparse.Namespace, action: str) -> str:
    return str(args.message) if args.message else default_message(action)


def _policy(args: argparse.Namespace, settings: PipelineSettings) -> GatePolicy:
    floors = {k: float(v) for k, v in _pairs(args.floor, "--floor").items()} or None
    return GatePolicy.from_settings(
        settings,
        tolerance=args.tolerance,
        floors=floors,
        allow_breaking=args.allow_breaking,
        serving_sklearn=args.serving_sklearn,
    )


def _verify_opts(args: argparse.Namespace, settings: PipelineSettings, stack: str) -> VerifyOptions:
    profile = None if args.no_loadcheck else (args.profile or ("local" if args.target == "local" else stack))
    if profile is not None:
        check_profile(profile)  # before anything is deployed
    out = args.reports or settings.reports_dir / "loadcheck" / stack
    return VerifyOptions(profile=profile, out_dir=out, duration_s=args.duration)


def _stack_url(args: argparse.Namespace, settings: PipelineSettings) -> tuple[str, Stack | None]:
    if args.url:
        return str(args.url), None
    if not args.stack:
        raise ConfigError("give --url, or --stack (and --target) to use the stack's serviceUrl output")
    handle = get_target(args.target, settings).select(args.stack)
    url = reachable_url(handle.outputs())
    if not url:
        raise ConfigError(f"stack {args.stack} has no serviceUrl/externalAddress output; deploy it first")
    return str(url), handle


def _annotate_current(handle: Stack | None, key: str, passed: bool) -> None:
    if handle is not None and (current := deployed_update(handle.history())) is not None:
        handle.annotate(current.number, key, PASS if passed else FAIL)


def cmd_train(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = train(args.recipe, args.out or settings.artifacts_dir, args.seed, _pairs(args.overrides, "--set"))
    _out(f"path={result.path}\nversion={result.version}")
    return _finish(args, "train", result, True)


def cmd_gate(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    if args.baseline and args.stack:
        raise ConfigError("give --baseline or --stack, not both")
    baseline: Path | Manifest | None = args.baseline
    source = None
    if args.stack:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        found = stack_baseline(get_target(args.target, settings), args.stack, settings.http_timeout_s, key)
        baseline, source = (found.manifest, found.source) if found else (None, f"none: {args.stack} is empty")
    result = gate(args.candidate, baseline, _policy(args, settings), source)
    _out(result.table())
    return _finish(args, "gate", result, result.passed)


def cmd_deploy(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    target = get_target(args.target, settings)
    result = deploy(
        target,
        args.stack,
        args.artifact,
        message=_message(args, f"deploy {args.artifact.name}"),
        image_ref=args.image,
        extra_config=_raw_pairs(args.config),
        on_output=_stream,
    )
    _out(f"url={result.url}\nmodel_version={result.model_version}\nimage={result.image_ref}\nupdate={result.update}")
    return _finish(args, "deploy", result, True)


def cmd_smoke(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    url, handle = _stack_url(args, settings)
    expected = args.expect_version
    if expected is None and handle is not None:
        expected = handle.outputs().get("modelVersion")
    key = settings.api_key.get_secret_value() if settings.api_key else None
    result = smoke(url, expected, timeout_s=settings.http_timeout_s, api_key=key)
    _annotate_current(handle, SMOKE, result.passed)
    _out(result.summary())
    return _finish(args, "smoke", result, result.passed)


def cmd_loadcheck(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    url, handle = _stack_url(args, settings)
    profile = args.profile or ("local" if args.target == "local" or not args.stack else args.stack)
    out = args.reports or settings.reports_dir / "loadcheck" / (args.stack or profile)
    key = settings.api_key.get_secret_value() if settings.api_key else None
    result = loadcheck(url, profile, out, args.duration, api_key=key)
    _annotate_current(handle, LOADCHECK, result.passed)
    _out(result.verdict)
    _out(f"summary={result.summary_path}\nhtml={result.html_path}")
    return _finish(args, "loadcheck", result, result.passed)


def cmd_promote(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    options = _verify_opts(args, settings, args.destination) if args.verify else None
    result = promote(
        get_target(args.target, settings),
        args.source,
        args.destination,
        message=args.message,
        verify_options=options,
        on_output=_stream,
    )
    _out(
        f"promoted {result.model_version} ({result.image_ref}) from {result.source} update "
        f"#{result.source_update} to {result.destination} update #{result.deploy.update}"
    )
    if result.rollback is not None:
        _out(result.rollback.summary())
    return _finish(args, "promote", result, result.passed)


def cmd_history(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = history(get_target(args.target, settings), args.stack, args.limit)
    _out(f"history of {args.stack} ({args.target}), newest first:\n{result.table()}")
    return _finish(args, "history", result, True)


def cmd_rollback(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = rollback(
        get_target(args.target, settings),
        args.stack,
        message=args.message,
        to_version=args.to_version or None,  # `--to ""` (an empty workflow input) means the default
        steps=args.steps,
        on_output=_stream,
        run_smoke=not args.no_smoke,
    )
    _out(result.summary())
    if result.smoke is not None:
        _out(result.smoke.summary())
    return _finish(args, "rollback", result, result.passed)


def cmd_release(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    spec = TrainSpec(args.recipe, args.out or settings.artifacts_dir, args.seed, _pairs(args.overrides, "--set"))
    result = release(
        get_target(args.target, settings),
        args.stack,
        message=_message(args, f"release to {args.stack}"),
        policy=_policy(args, settings),
        verify_options=_verify_opts(args, settings, args.stack),
        artifact=args.artifact,
        train_spec=spec,
        image_ref=args.image,
        extra_config=_raw_pairs(args.config),
        on_output=_stream,
    )
    if result.gate is not None:
        _out(result.gate.table())
    if result.verification is not None:
        _out(result.verification.smoke.summary())
        if result.verification.loadcheck is not None:
            _out(result.verification.loadcheck.verdict)
    if result.rollback is not None:
        _out(result.rollback.summary())
    verdict = "released" if result.passed else f"FAILED at {result.failed_stage}"
    reason = f" ({result.error})" if result.error else ""
    _out(f"release of {result.model_version} to {args.stack}: {verdict}{reason}")
    return _finish(args, "release", result, result.passed)


def cmd_destroy(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = destroy(get_target(args.target, settings), args.stack, on_output=_stream)
    _out(f"destroyed {result.stack}")
    return _finish(args, "destroy", result, True)
