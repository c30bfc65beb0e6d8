"""The drift report as a picture: reference vs live fractions per bin, one panel per feature and the output."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from pipelines.drift import DriftReport, PartDrift

COLUMNS = 2


def write_chart(report: DriftReport, path: Path) -> Path:
    """Write a PNG of REPORT to PATH: bars of training vs live fractions, each panel titled with its verdict."""
    parts = [*report.features.items(), (f"output: {report.output_name}", report.output)]
    rows = math.ceil(len(parts) / COLUMNS)
    # A Figure on the Agg canvas, not pyplot: no global backend to set, no window, nothing left open (CI, SSH).
    fig = Figure(figsize=(6 * COLUMNS, 3 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, COLUMNS, squeeze=False)
    for ax, (name, part) in zip(axes.flat, parts, strict=False):
        _panel(ax, name, part)
    for ax in list(axes.flat)[len(parts) :]:
        ax.axis("off")
    fig.suptitle(f"{report.model_version}: {'+'.join(report.sources)} over {report.window}, {report.live_count} values")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=80)
    return path


def _panel(ax: Axes, name: str, part: PartDrift) -> None:
    x = np.arange(len(part.reference))
    ax.bar(x - 0.2, part.reference, width=0.4, label="training")
    ax.bar(x + 0.2, part.live, width=0.4, label="live")
    verdict = "DRIFT" if part.drift else "ok" if part.enough else "too few"
    ax.set_title(f"{name}: PSI {part.psi:.3f} / {part.threshold:.3f} ({verdict}, n={part.count})", fontsize=9)
    ax.set_xlabel("bin")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7)
