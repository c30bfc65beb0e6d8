"""Stage `shadow`: start a challenger beside a stack's model, report how it compares, stop it.

`start` sets the stack's `shadow.*` keys (infra/contract.py) and runs `up`: the service loads the challenger and
scores a sampled copy of its requests off the response path (docs/shadow.md). `stop` clears them and runs `up`.
`report` reads the prediction log (pipelines/logdb.py) and, when the service answers, its shadow counters.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from infra import contract
from model.artifact import ArtifactError, load_manifest
from pipelines import commands, logdb
from pipelines import shadow_report as sr
from pipelines.errors import ConfigError, StageError
from pipelines.settings import REPO_ROOT, PipelineSettings
from pipelines.targets import get_target
from pipelines.targets.base import ARTIFACT_DIR_KEY, Target, Update, reachable_url

log = logging.getLogger(__name__)
KEYS = {key: contract.full_key(key) for key in contract.SHADOW_KEYS}
OFF = {KEYS[contract.SHADOW_MODEL_VERSION]: "", KEYS[contract.SHADOW_ARTIFACT_DIR]: "",
       KEYS[contract.SHADOW_IMAGE_DIGEST_REF]: "", KEYS[contract.SHADOW_SAMPLE]: "0"}  # fmt: skip


@dataclass(frozen=True)
class ShadowChange:
    stack: str
    action: str  # start or stop
    model_version: str | None
    sample: float
    update: int | None


@dataclass(frozen=True)
class ShadowReport:
    challenger: str
    champions: dict[str, int]  # champion versions of the compared requests, with their counts
    requests: int
    coverage: dict[str, Any]
    agreement: dict[str, Any]
    latency_ms: dict[str, dict[str, float]]
    errors: dict[str, float | None]
    quality: dict[str, Any] | None
    chart: str | None

    @property
    def disagreement(self) -> float | None:
        value = self.agreement.get("disagreement")
        return float(value) if value is not None else None


# -- start / stop ----------------------------------------------------------------------------------------
def start(
    target: Target, stack: str, artifact: Path, sample: float, image: str | None = None, message: str | None = None
) -> ShadowChange:
    """Run ARTIFACT as STACK's challenger on a SAMPLE (0-1] of its requests.

    Args:
        target: where the stack lives (local or pulumi).
        stack: a deployed stack.
        artifact: the challenger's artifact folder (same features as the stack's model).
        sample: fraction of requests copied to the challenger, above 0 and at most 1.
        image: the challenger's image by digest (pulumi: an initContainer copies its artifact into the pod).
        message: the update message.

    Returns:
        ShadowChange naming the update that started it.
    """
    if not 0 < sample <= 1:
        raise ConfigError(f"--sample is a fraction above 0 and at most 1, got {sample}")
    try:
        manifest = load_manifest(artifact)
    except ArtifactError as exc:
        raise ConfigError(f"refusing to shadow {artifact}: {exc}") from None
    if target.kind == "pulumi" and not image:
        raise ConfigError("--image is required on pulumi: the challenger's image by digest (repo@sha256:...)")
    handle = target.select(stack)
    _same_features(handle.get_config(ARTIFACT_DIR_KEY), manifest.feature_names)
    config = {
        KEYS[contract.SHADOW_MODEL_VERSION]: manifest.version,
        KEYS[contract.SHADOW_ARTIFACT_DIR]: _repo_relative(artifact),
        KEYS[contract.SHADOW_IMAGE_DIGEST_REF]: image or "",
        KEYS[contract.SHADOW_SAMPLE]: str(sample),
    }
    handle.set_config(config)
    outcome = handle.up(message or commands.default_message(f"shadow {manifest.version} at {sample}"), commands.stream)
    return ShadowChange(stack, "start", manifest.version, sample, outcome.update)


def stop(target: Target, stack: str, message: str | None = None) -> ShadowChange:
    """Clear STACK's shadow keys and run `up`: the service runs its model alone again."""
    handle = target.select(stack)
    handle.set_config(OFF)
    outcome = handle.up(message or commands.default_message("shadow stop"), commands.stream)
    return ShadowChange(stack, "stop", None, 0.0, outcome.update)


def _same_features(champion_dir: str | None, features: list[str]) -> None:
    folder = REPO_ROOT / champion_dir if champion_dir else None
    if folder is None or not (folder / "manifest.json").is_file():
        return  # not on this machine (a pulumi stack built elsewhere): the service checks it at load
    champion = load_manifest(folder).feature_names
    if champion != features:
        raise ConfigError(f"the challenger takes features {features}, the stack's model {champion}: a shadow "
                          "scores the champion's validated rows, so both must take the same features")  # fmt: skip


def _repo_relative(artifact: Path) -> str:
    resolved = artifact.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(resolved)


# -- report ----------------------------------------------------------------------------------------------
def report(
    database_url: str, *, challenger: str | None = None, service_url: str | None = None,
    chart: Path | None = None, rel_tolerance: float = 0.05,
) -> ShadowReport:  # fmt: skip
    """Compare the challenger's logged answers with the champion's on the same requests.

    Args:
        database_url: the prediction log.
        challenger: the challenger's version (default: the one shadowed last).
        service_url: the service, for its shadow counters (copies dropped never reach the log).
        chart: write a PNG there.
        rel_tolerance: a regression's instance disagrees beyond this relative difference.

    Returns:
        ShadowReport; StageError when the log holds no shadow answers.
    """
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            rows = sr.read_rows(conn, challenger)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot read the prediction log at the database URL given: {first}") from None
    if rows is None or not rows.pairs:
        raise StageError(f"no shadow answers{f' of {challenger}' if challenger else ''} in the prediction log; "
                         "start one with `python -m pipelines shadow start`")  # fmt: skip
    copies, champion_errors = _service_figures(service_url)
    coverage = {"compared_requests": len(rows.latency_ms["champion"]), "compared_instances": len(rows.pairs),
                "copies": copies}  # fmt: skip
    errors = {"champion_5xx": champion_errors, "challenger_failed": copies.get("failed") if copies else None}
    if chart is not None:
        from pipelines.shadow_chart import draw

        draw(rows, chart)
    return ShadowReport(rows.challenger, dict(rows.champions), len(rows.latency_ms["champion"]), coverage,
                        sr.agreement(rows.pairs, rel_tolerance), sr.latency(rows), errors, sr.quality(rows),
                        str(chart) if chart else None)  # fmt: skip


def _service_figures(url: str | None) -> tuple[dict[str, float] | None, float | None]:
    """The service's shadow copies by outcome and its /predict 5xx count; (None, None) when it does not answer."""
    if not url:
        return None, None
    try:
        text = httpx.get(url.rstrip("/") + "/metrics", timeout=5).text
    except httpx.HTTPError as exc:
        log.warning("no shadow counters from %s (%s); the report uses the log only", url, exc)
        return None, None
    copies: dict[str, float] = {}
    errors = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "modelship_shadow_copies_total":
                copies[s.labels["outcome"]] = s.value
            elif s.name == "modelship_http_requests_total" and s.labels.get("status", "").startswith("5"):
                errors += s.value
    return copies or None, errors


# -- the gate promote asks for ---------------------------------------------------------------------------
def require_agreement(database_url: str, version: str | None, most: float, min_samples: int,
                      rel_tolerance: float) -> ShadowReport:  # fmt: skip
    """The shadow report of VERSION, or StageError when it disagrees more than MOST or has too few samples."""
    if not 0 <= most <= 1:
        raise ConfigError(f"--require-shadow-agreement is a disagreement between 0 and 1, got {most}")
    try:
        found = report(database_url, challenger=version, rel_tolerance=rel_tolerance)
    except StageError as exc:
        raise StageError(f"refusing to promote {version}: {exc}") from None
    samples, disagreement = found.agreement["instances"], found.disagreement
    if samples < min_samples:
        raise StageError(f"refusing to promote {version}: its shadow compared {samples} instances, fewer "
                         f"than the {min_samples} required (MODELSHIP_PIPELINE_SHADOW_MIN_SAMPLES)")  # fmt: skip
    if disagreement is None or disagreement > most:
        raise StageError(f"refusing to promote {version}: its shadow disagrees with the champion on "
                         f"{disagreement:.1%} of {samples} instances, more than {most:.1%}")  # fmt: skip
    return found


def require_promotion_agreement(args: argparse.Namespace, settings: PipelineSettings, chosen: Update) -> None:
    """`promote --require-shadow-agreement X`: the destination's shadow of the promoted version must agree."""
    url = logdb.stack_database_url(get_target(args.target, settings).select(args.destination), args.database_url)
    found = require_agreement(url, chosen.model_version, args.require_shadow_agreement,
                              settings.shadow_min_samples, settings.shadow_rel_tolerance)  # fmt: skip
    log.info("shadow of %s on %s disagrees on %.2f%% of %d instances", chosen.model_version, args.destination,
             (found.disagreement or 0) * 100, found.agreement["instances"])  # fmt: skip


# ---- command line --------------------------------------------------------------------------------------------
def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("start", "report", "stop"))
    commands.stack_options(parser, required=False)
    parser.add_argument("--artifact", type=Path, help="start: the challenger's artifact folder")
    commands.image_option(parser)
    parser.add_argument("--sample", type=float, help="start: fraction of requests copied, (0, 1]")
    parser.add_argument("--challenger", help="report: the challenger's version (default: the newest shadowed)")
    parser.add_argument("--chart", type=Path, help="report: write a PNG chart there")
    logdb.database_option(parser)
    commands.url_option(parser)
    commands.message_option(parser)


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    if args.action == "report":
        return _report(args, settings)
    if not args.stack:
        raise ConfigError(f"shadow {args.action} needs --stack")
    target = get_target(args.target, settings)
    if args.action == "start":
        if args.artifact is None or args.sample is None:
            raise ConfigError("shadow start needs --artifact DIR and --sample FRACTION")
        change = start(target, args.stack, args.artifact, args.sample, args.image, args.message)
    else:
        change = stop(target, args.stack, args.message)
    what = f", challenger {change.model_version} at sample {change.sample}" if change.model_version else ""
    commands.out(f"shadow {change.action} on {change.stack}: update #{change.update}{what}")
    return commands.finish(args, "shadow", change, True)


def _report(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    if not (args.database_url or args.stack):
        raise ConfigError("give --database-url, or --stack (and --target) to read that stack's prediction log")
    url = logdb.stack_database_url(get_target(args.target, settings).select(args.stack), args.database_url) \
        if args.stack else str(args.database_url)  # fmt: skip
    service = args.url or (_stack_service_url(args, settings) if args.stack else None)
    found = report(url, challenger=args.challenger, service_url=service, chart=args.chart,
                   rel_tolerance=settings.shadow_rel_tolerance)  # fmt: skip
    commands.out(summary(found))
    return commands.finish(args, "shadow", found, True)


def _stack_service_url(args: argparse.Namespace, settings: PipelineSettings) -> str | None:
    return reachable_url(get_target(args.target, settings).select(args.stack).outputs())


def summary(found: ShadowReport) -> str:
    """The report as `key=value` lines."""
    a, lat = found.agreement, found.latency_ms
    lines = [f"challenger={found.challenger}", f"champions={','.join(found.champions)}",
             f"compared_requests={found.requests}", f"compared_instances={a['instances']}"]  # fmt: skip
    for outcome, n in sorted((found.coverage.get("copies") or {}).items()):
        lines.append(f"copies_{outcome}={n:.0f}")
    if "match_rate" in a:
        lines.append(f"match_rate={a['match_rate']:.4f}")
    else:
        lines += [f"mae={a['mae']:.4f}", f"abs_diff_p50={a['abs_diff']['p50']:.4f}",
                  f"abs_diff_p99={a['abs_diff']['p99']:.4f}", f"rel_diff_p50={a['rel_diff']['p50']:.6f}",
                  f"rel_diff_p99={a['rel_diff']['p99']:.6f}"]  # fmt: skip
    lines.append(f"disagreement={a['disagreement']:.4f}")
    for side in ("champion", "challenger"):
        lines.append(f"{side}_latency_ms_p50={lat[side]['p50']:.2f} {side}_latency_ms_p99={lat[side]['p99']:.2f}")
    lines += [f"{k}={'n/a' if v is None else f'{v:.0f}'}" for k, v in found.errors.items()]
    lines.append(_quality_line(found.quality))
    if found.chart:
        lines.append(f"chart={found.chart}")
    return "\n".join(lines)


def _quality_line(q: dict[str, Any] | None) -> str:
    if q is None:
        return "quality=n/a (no labels table)"
    scores = [f"{side}_{q['metric']}={q[side]:.4f}" for side in ("champion", "challenger")] if q["labelled"] else []
    return " ".join([f"quality_labelled={q['labelled']}", *scores])


STAGE = commands.Stage("shadow", "run a challenger beside a stack's model: start, report, stop", _add_arguments, _run)
