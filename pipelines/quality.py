"""Stage `quality`: a model version's live metrics (labelled live predictions) beside its held-out ones.

The figures are the service's (`service.quality`: the same query, the same metrics, the same verdict), so this
report and `modelship_live_quality` agree. It passes (exit 0) unless the primary metric is degraded.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from model.artifact import ArtifactError, load_manifest
from model.manifest import Manifest
from pipelines import commands, logdb
from pipelines.errors import ConfigError, UnknownVersionError
from pipelines.report import render_table
from pipelines.settings import PipelineSettings
from service.quality import NEWEST_LIVE_VERSION, PAIRS, is_degraded, live_metrics, pair_of, worse_by
from service.sources import LIVE


@dataclass(frozen=True)
class QualityResult:
    model_version: str
    labels: int  # labelled live instances in the window
    metric: str  # the manifest's primary metric
    live: dict[str, float | None]  # None: the labels cannot define it (none, or one for r2)
    held_out: dict[str, float]
    degraded: bool
    window: str
    tolerance: float
    min_labels: int
    higher_is_better: bool  # of the primary metric

    def summary(self) -> str:
        rows = [[f"{name}{' *' if name == self.metric else ''}", _fmt(value), _fmt(self.held_out.get(name))]
                for name, value in self.live.items()]  # fmt: skip
        head = f"quality of {self.model_version} over the last {self.window}: {self.labels} labelled live instances"
        return "\n".join([head, render_table(["metric", "live", "held-out"], rows), self._verdict()])

    def _verdict(self) -> str:
        state = f"degraded={str(self.degraded).lower()}"
        live, held = self.live.get(self.metric), self.held_out.get(self.metric)
        if self.labels < self.min_labels or live is None or held is None:
            return f"{state}  (too few labels to judge: {self.labels} of the {self.min_labels} needed)"
        worse = worse_by(live, held, self.higher_is_better)
        return f"{state}  ({self.metric} {abs(worse):.1%} {'worse' if worse > 0 else 'better'} than held-out; " \
               f"tolerance {self.tolerance:.0%})"  # fmt: skip


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def quality(
    conn: psycopg.Connection[Any], manifest: Manifest, window: timedelta, tolerance: float, min_labels: int,
    window_text: str = "",
) -> QualityResult:  # fmt: skip
    """Judge MANIFEST's model version on its labelled live traffic of the last WINDOW.

    Args:
        conn: a connection to the prediction log.
        manifest: the version's manifest (its task, held-out metrics and primary metric).
        window: predictions made this long ago or later count.
        tolerance: degraded when the primary metric is worse than held-out by more than this, relatively.
        min_labels: fewer labels never count as degraded.

    Returns:
        QualityResult; `degraded` is the verdict.
    """
    rows = conn.execute(PAIRS, (manifest.version, window.total_seconds())).fetchall()
    pairs = [pair_of(row) for row in rows]
    live = live_metrics(manifest.task, pairs)
    primary = manifest.primary_metric
    degraded = is_degraded(live.get(primary.name), manifest.metrics.get(primary.name), primary.higher_is_better,
                           len(pairs), tolerance, min_labels)  # fmt: skip
    return QualityResult(manifest.version, len(pairs), primary.name, live, dict(manifest.metrics), degraded,
                         window_text or str(window), tolerance, min_labels, primary.higher_is_better)  # fmt: skip


def pick_version(conn: psycopg.Connection[Any], asked: str | None) -> str:
    """`--model-version`, else the newest live one; UnknownVersionError when the log has no live rows of it."""
    if asked is None:
        row = conn.execute(NEWEST_LIVE_VERSION).fetchone()
        if row is None:
            raise ConfigError(f"the prediction log has no {LIVE} predictions yet: nothing to judge")
        return str(row[0])
    found = conn.execute("SELECT 1 FROM predictions WHERE model_version = %s AND source = %s LIMIT 1", (asked, LIVE))
    if found.fetchone() is None:
        raise UnknownVersionError(f"model version {asked} has no {LIVE} predictions in the log; check --model-version")
    return asked


def find_manifest(version: str, artifact: Path | None, settings: PipelineSettings) -> Manifest:
    """VERSION's manifest: `--artifact DIR`, else `<artifacts_dir>/<version>/` (a version names its folder)."""
    folder = artifact if artifact is not None else Path(settings.artifacts_dir) / version
    try:
        manifest = load_manifest(folder)
    except ArtifactError as exc:
        raise ConfigError(f"no manifest for {version}: {exc}; pass --artifact DIR") from exc
    if manifest.version != version:
        raise ConfigError(f"{folder} holds {manifest.version}, not {version}; pass that version's artifact")
    return manifest


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    logdb.database_options(parser)
    parser.add_argument("--model-version", help="default: the version of the newest live prediction")
    parser.add_argument("--artifact", type=Path, help="the version's artifact folder (default: artifacts/<version>)")


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    with logdb.connect(logdb.database_url(args, settings)) as conn:
        version = pick_version(conn, args.model_version)
        manifest = find_manifest(version, args.artifact, settings)
        try:
            result = quality(conn, manifest, logdb.parse_window(args.window), settings.quality_tolerance,
                             settings.quality_min_labels, args.window)  # fmt: skip
        except psycopg.errors.UndefinedTable as exc:
            raise ConfigError("the prediction log has no labels table: the service that migrates it is older "
                              "than POST /feedback; deploy a current one") from exc  # fmt: skip
    commands.out(result.summary())
    return commands.finish(args, "quality", result, not result.degraded)


STAGE = commands.Stage("quality", "live metrics from labelled predictions beside held-out", _add_arguments, _run)
