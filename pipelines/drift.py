"""Stage `drift`: compare a model version's logged live traffic with its training data's reference.

The reference (model/drift.py, written into the manifest at training) holds each feature's and the output's bins,
training fractions and calibrated threshold. The prediction log is binned in SQL (pipelines/drift_log.py); the
PSI is model.drift.psi, the one PSI every part of modelship computes. Exit 0: no drift (or too few values, or a
manifest without a reference: drift is off, not an error); 1: drift; 2: a bad request (see pipelines/cli.py).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from model.drift import BinnedReference, DriftReference, fractions, psi
from model.manifest import Manifest
from pipelines import commands, logdb
from pipelines.drift_log import LiveCounts, connection, count_bins, pick_version
from pipelines.drift_manifest import find_manifest
from pipelines.errors import ConfigError
from pipelines.report import render_table
from pipelines.settings import PipelineSettings
from service.sources import LIVE, SOURCE

log = logging.getLogger(__name__)

HEADERS = ["part", "name", "psi", "threshold", "count", "verdict"]


@dataclass(frozen=True)
class PartDrift:
    """One feature's (or the output's) verdict over the window."""

    psi: float
    threshold: float
    drift: bool  # psi > threshold, with enough values
    count: int
    enough: bool  # at least the reference's window of live values: below it, no verdict
    reference: tuple[float, ...]  # the training fractions per bin
    live: tuple[float, ...]  # the live fractions per bin (all 0 when nothing was logged)


@dataclass(frozen=True)
class DriftReport:
    model_version: str
    window: str  # as asked: "1h"
    sources: tuple[str, ...]
    reference_window: int  # the live values a verdict needs (DriftReference.window)
    live_count: int  # logged instances in the window; a batch of 100 counts 100
    skipped: int  # logged rows in a shape this version of the report does not read
    features: dict[str, PartDrift]
    output_name: str
    output: PartDrift

    @property
    def drift(self) -> bool:
        return self.output.drift or any(part.drift for part in self.features.values())

    @property
    def enough(self) -> bool:
        return self.live_count >= self.reference_window

    def record(self) -> dict[str, Any]:
        """The `--record` JSON: these keys are a contract (the Prometheus agreement test and people read them)."""
        return {
            "model_version": self.model_version,
            "window": self.window,
            "live_count": self.live_count,
            "features": {name: _part_record(part) for name, part in self.features.items()},
            "output": _part_record(self.output),
            "drift": self.drift,
            "enough": self.enough,
            "reference_window": self.reference_window,
            "sources": list(self.sources),
            "skipped": self.skipped,
        }

    def table(self) -> str:
        rows = [_row("feature", name, part, self.reference_window) for name, part in self.features.items()]
        rows.append(_row("output", self.output_name, self.output, self.reference_window))
        head = (
            f"drift of {self.model_version}: {'+'.join(self.sources)} traffic over the last {self.window}, "
            f"{self.live_count} instances (a verdict needs {self.reference_window})"
        )
        tail = f"{self.skipped} logged rows in an older shape were skipped" if self.skipped else ""
        return "\n".join(filter(None, [head, render_table(HEADERS, rows), tail]))


def _part_record(part: PartDrift) -> dict[str, Any]:
    return {"psi": part.psi, "threshold": part.threshold, "drift": part.drift, "count": part.count,
            "enough": part.enough}  # fmt: skip


def _row(kind: str, name: str, part: PartDrift, needed: int) -> list[str]:
    verdict = "DRIFT" if part.drift else "ok" if part.enough else f"too few ({part.count} < {needed})"
    return [kind, name, f"{part.psi:.4f}", f"{part.threshold:.4f}", str(part.count), verdict]


def drift_off(manifest: Manifest) -> str:
    return (
        f"drift is off: manifest {manifest.version} has no drift reference (trained before schema 2); "
        "retrain to get one"
    )


def judge(reference: BinnedReference, counts: Sequence[int], window: int) -> PartDrift:
    """PSI of COUNTS against REFERENCE; a verdict only from WINDOW values on. Nothing logged reads as PSI 0."""
    count = sum(counts)
    live = fractions(counts)
    value = psi(reference.fractions, live) if count else 0.0
    enough = count >= window
    return PartDrift(value, reference.threshold, enough and value > reference.threshold, count, enough,
                     reference.fractions, tuple(live))  # fmt: skip


def drift_report(
    db: str | psycopg.Connection[Any],
    manifest: Manifest,
    window: str | timedelta = "1h",
    sources: Sequence[str] = (LIVE,),
) -> DriftReport:
    """Compare MANIFEST's model version's logged traffic over the last WINDOW with its drift reference.

    Args:
        db: a database URL or an open connection to the prediction log.
        manifest: the version's manifest, with its drift reference (`drift_off` says why one may lack it).
        window: how far back to read: a duration such as "1h", or a timedelta.
        sources: which requests to read (default live traffic only, not smoke, loadcheck, bench or shadow).

    Returns:
        DriftReport; `record()` is the `--record` JSON, `table()` the printed table.
    """
    reference = _reference(manifest)
    delta = logdb.parse_window(window) if isinstance(window, str) else window
    with connection(db) as conn:
        counts = count_bins(conn, reference, manifest.version, delta, list(sources))
    label = window if isinstance(window, str) else _label(window)
    return _report(manifest, reference, counts, label, tuple(sources))


def _reference(manifest: Manifest) -> DriftReference:
    if manifest.drift is None:
        raise ConfigError(drift_off(manifest))
    return manifest.drift


def _report(
    manifest: Manifest, reference: DriftReference, counts: LiveCounts, window: str, sources: tuple[str, ...]
) -> DriftReport:
    n = reference.window
    features = {name: judge(part, counts.features[name], n) for name, part in reference.features.items()}
    return DriftReport(manifest.version, window, sources, n, counts.instances, counts.skipped, features,
                       manifest.target.name, judge(reference.output, counts.output, n))  # fmt: skip


def _label(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---- command line --------------------------------------------------------------------------------------------


def _source(text: str) -> str:
    if not SOURCE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a source name (live, smoke, loadcheck, bench, shadow)")
    return text


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    logdb.database_options(parser)  # --stack/--target or --database-url, and --window
    parser.add_argument("--model-version", help="default: the version of the newest logged row")
    parser.add_argument(
        "--source", type=_source, action="append", help="read this source's rows (repeatable; default: live only)"
    )
    parser.add_argument("--artifact", type=Path, help="the version's artifact folder (default: artifacts/<version>)")
    parser.add_argument("--chart", type=Path, help="write a PNG of reference vs live fractions to PATH")


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    sources = list(dict.fromkeys(args.source or [LIVE]))
    url = logdb.database_url(args, settings)
    log.debug("reading the prediction log at %s", logdb.redact(url))
    with connection(url) as conn:
        version = pick_version(conn, args.model_version, sources)
        manifest = find_manifest(version, args, settings)
        if manifest.drift is None:
            commands.out(drift_off(manifest))
            _write(args.record, {"model_version": version, "window": args.window, "live_count": 0, "features": {},
                                 "output": None, "enabled": False, "reason": drift_off(manifest)})  # fmt: skip
            return True
        report = drift_report(conn, manifest, args.window, sources)
    commands.out(report.table())
    if args.chart:
        from pipelines.drift_chart import write_chart  # matplotlib: only when a chart is asked for

        write_chart(report, args.chart)
    _write(args.record, report.record() | {"enabled": True})
    return not report.drift


def _write(path: Path | None, record: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")


STAGE = commands.Stage("drift", "compare a model's live traffic with its training data", _add_arguments, _run)
