"""Live drift counters: how many live values fell in each bin of the manifest's drift reference.

The service only counts; Prometheus turns counts into PSI over a window (infra/components/drift_rules.py) and
`python -m pipelines drift` does the same from the log. The bins are model/drift.py's: a feature's bin is
`searchsorted(edges, v, side="right")`, a classifier's output bin is its best class. A regression's output is
binned as answered (rounded to cents), which moves a value across an edge only when it lies within 0.005 of it.

Every counter child exists from start-up at zero, so an empty bin is a series with value 0, not a missing one:
PSI needs to see that a bin the training data filled is empty now. The reference (fractions, thresholds,
window) is exported beside the counts so the rules need nothing but the scrape.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from model.drift import DriftReference
from model.manifest import Manifest
from service.model_runner import Outputs

# Owned here; infra/components/drift_rules.py reads them (a Counter `x` is scraped as `x_total`).
INPUT_BINS = "modelship_drift_input_bin"
OUTPUT_BINS = "modelship_drift_output_bin"
REFERENCE_FRACTION = "modelship_drift_reference_fraction"
THRESHOLD = "modelship_drift_threshold"
WINDOW = "modelship_drift_window"
ENABLED = "modelship_drift_enabled"
OUTPUT = "__output__"  # the `feature` label of the output's reference fraction and threshold

logger = logging.getLogger("modelship.drift")


class LiveDrift:
    """The per-bin counts of one model version; `count` is a no-op when the manifest has no reference.

    The counts are one int64 array, added to on the request path and read by a collector at scrape time:
    a prometheus_client Counter child would take a lock per hit bin (one per feature for every request)."""

    def __init__(self, registry: CollectorRegistry, manifest: Manifest) -> None:
        self.version = manifest.version
        self.reason = _unusable(manifest)
        self.enabled = self.reason is None
        enabled = Gauge(ENABLED, "1 when live values are counted against the manifest's drift reference",
                        ["model_version"], registry=registry)  # fmt: skip
        enabled.labels(self.version).set(float(self.enabled))
        self._total = 0
        if manifest.drift is None or not self.enabled:
            return
        reference = manifest.drift
        binned = [reference.features[name] for name in manifest.feature_names]
        self._edge_lists = [list(map(float, b.edges)) for b in binned]
        self._edges = [np.asarray(e, dtype=np.float64) for e in self._edge_lists]
        self._output_edges = np.asarray(reference.output.edges, dtype=np.float64)
        self._output_list = list(map(float, reference.output.edges))
        classes = reference.output.classes
        self._class_bins = None if classes is None else [classes.index(c) for c in manifest.classes or ()]
        self._class_array = np.asarray(self._class_bins or [], dtype=np.intp)
        sizes = [b.bins for b in binned] + [reference.output.bins]
        self._offsets = np.cumsum([0, *sizes[:-1]], dtype=np.intp)  # column j's bins start at offsets[j]
        self._offset_list = self._offsets.tolist()
        self._total = sum(sizes)
        self.counts = np.zeros(self._total, dtype=np.int64)
        labels = [(name, str(i)) for name, b in zip(manifest.feature_names, binned, strict=True) for i in range(b.bins)]
        registry.register(_CountsCollector(self, labels, [str(i) for i in range(reference.output.bins)]))
        registry.register(_ReferenceCollector(self.version, reference))

    def count(self, matrix: np.ndarray, outputs: Outputs) -> None:
        """Count a request's live rows: one row by bisection, a batch with a searchsorted per column and a bincount."""
        if not self.enabled:
            return
        if len(matrix) == 1:
            self._count_one(matrix[0].tolist(), outputs)
            return
        codes = np.empty((len(self._offsets), len(matrix)), dtype=np.intp)  # a row per feature, then the output
        for j, (edges, column) in enumerate(zip(self._edges, matrix.T, strict=True)):
            codes[j] = np.searchsorted(edges, column, side="right")
        if self._class_bins is not None and outputs.best is not None:
            codes[-1] = self._class_array[outputs.best]
        else:
            codes[-1] = np.searchsorted(self._output_edges, outputs.values, side="right")
        codes += self._offsets[:, None]
        self.counts += np.bincount(codes.ravel(), minlength=self._total)

    def _count_one(self, row: list[float], outputs: Outputs) -> None:
        counts, offsets = self.counts, self._offset_list
        for j, (value, edges) in enumerate(zip(row, self._edge_lists, strict=True)):
            counts[offsets[j] + bisect_right(edges, value)] += 1
        if self._class_bins is not None and outputs.best is not None:
            out = self._class_bins[int(outputs.best[0])]
        else:
            out = bisect_right(self._output_list, float(outputs.values[0]))
        counts[offsets[-1] + out] += 1

    def announce(self) -> None:
        """The one start-up line that says whether drift is counted, and if not, why."""
        if self.reason is not None:
            logger.warning("drift: off for model %s: %s; %s 0", self.version, self.reason, ENABLED)
        else:
            logger.info("drift: counting live values of model %s in %d bins (%d features and the output)",
                        self.version, self._total, len(self._edge_lists))  # fmt: skip


class _CountsCollector(Collector):
    """The live counts as counters, read at scrape time; every bin is there from start-up, at zero."""

    def __init__(self, drift: LiveDrift, inputs: list[tuple[str, str]], outputs: list[str]) -> None:
        self.drift, self.inputs, self.outputs = drift, inputs, outputs

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = self.drift.counts.tolist()  # a copy: a request adding meanwhile is counted at the next scrape
        version, n = self.drift.version, len(self.inputs)
        inputs = CounterMetricFamily(INPUT_BINS, "Live input values per drift-reference bin, by feature",
                                     labels=["model_version", "feature", "bin"])  # fmt: skip
        for (name, b), value in zip(self.inputs, counts[:n], strict=True):
            inputs.add_metric([version, name, b], value)
        output = CounterMetricFamily(OUTPUT_BINS, "Live outputs per drift-reference bin (a classifier's: per class)",
                                     labels=["model_version", "bin"])  # fmt: skip
        for b, value in zip(self.outputs, counts[n:], strict=True):
            output.add_metric([version, b], value)
        yield from (inputs, output)


def _unusable(manifest: Manifest) -> str | None:
    """Why the manifest's reference cannot be counted against, or None when it can."""
    reference = manifest.drift
    if reference is None:
        return "its manifest has no drift reference (trained before references; retrain to get one)"
    missing = [n for n in manifest.feature_names if n not in reference.features]
    if missing:
        return f"the drift reference has no bins for feature(s) {', '.join(missing)}; retrain the artifact"
    parts = [*reference.features.items(), (OUTPUT, reference.output)]
    bad = [name for name, b in parts if b.classes is None and b.bins != len(b.edges) + 1]
    if bad:
        return f"the drift reference of {', '.join(bad)} has a fraction count that does not match its edges"
    out = reference.output
    if (manifest.task == "classification") != (out.classes is not None) or set(out.classes or ()) != set(
        manifest.classes or ()
    ):
        return "the drift reference's output bins do not match the model's task or classes"
    return None


class _ReferenceCollector(Collector):
    """The reference itself, read at scrape time: fractions per bin, thresholds, the calibrated window."""

    def __init__(self, version: str, reference: DriftReference) -> None:
        self.version, self.reference = version, reference

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ref = self.reference
        parts = [*ref.features.items(), (OUTPUT, ref.output)]
        fractions = GaugeMetricFamily(REFERENCE_FRACTION, f"Training rows' fraction per drift bin ({OUTPUT}: the "
                                      "output)", labels=["model_version", "feature", "bin"])  # fmt: skip
        thresholds = GaugeMetricFamily(THRESHOLD, "PSI above which a feature (or the output) has drifted",
                                       labels=["model_version", "feature"])  # fmt: skip
        for name, binned in parts:
            for i, fraction in enumerate(binned.fractions):
                fractions.add_metric([self.version, name, str(i)], fraction)
            thresholds.add_metric([self.version, name], binned.threshold)
        window = GaugeMetricFamily(WINDOW, "Live values the drift thresholds are calibrated for (the alerts' "
                                   "minimum sample)", labels=["model_version"])  # fmt: skip
        window.add_metric([self.version], ref.window)
        yield from (fractions, thresholds, window)
