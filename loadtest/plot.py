"""Latency-over-time plot from the per-second timeline (rendered outside the Locust process)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window (CI, pipelines)
import matplotlib.pyplot as plt

from loadtest.slo import SloProfile
from loadtest.timeline import AGGREGATED, Bucket

MIN_SAMPLES_PER_LINE = 30


def plot_latency(buckets: list[Bucket], profile: SloProfile, title: str, path: Path) -> Path:
    """Two panels: p50/p95/p99 per second (with the SLO lines), then requests and failures per second."""
    by_endpoint: dict[str, list[Bucket]] = defaultdict(list)
    for bucket in buckets:
        by_endpoint[bucket.endpoint].append(bucket)
    total = by_endpoint.pop(AGGREGATED, [])
    fig, (lat, rate) = plt.subplots(2, 1, figsize=(13, 7), sharex=True, height_ratios=(3, 1))
    seconds = [b.second for b in total]
    lat.plot(seconds, [b.p50_ms for b in total], label="all p50", color="tab:green")
    lat.plot(seconds, [b.p95_ms for b in total], label="all p95", color="tab:orange")
    lat.plot(seconds, [b.p99_ms for b in total], label="all p99", color="tab:red")
    for endpoint, rows in sorted(by_endpoint.items()):
        if sum(b.requests for b in rows) < MIN_SAMPLES_PER_LINE:
            continue  # a handful of dashboard reads draws noise, not a trend
        lat.plot([b.second for b in rows], [b.p95_ms for b in rows], lw=0.8, ls=":", label=f"{endpoint} p95")
    lat.axhline(profile.p95_ms, color="tab:orange", ls="--", lw=1, label=f"SLO p95 {profile.p95_ms:g} ms")
    lat.axhline(profile.p99_ms, color="tab:red", ls="--", lw=1, label=f"SLO p99 {profile.p99_ms:g} ms")
    lat.set_yscale("log")
    lat.set_ylabel("latency (ms, log)")
    lat.set_title(title)
    lat.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    lat.grid(True, which="both", alpha=0.3)
    rate.bar(seconds, [b.requests for b in total], width=0.9, color="tab:blue", label="requests/s")
    rate.bar(seconds, [b.failures for b in total], width=0.9, color="tab:red", label="failures/s")
    rate.axhline(profile.min_rps, color="tab:blue", ls="--", lw=1, label=f"SLO {profile.min_rps:g} req/s")
    rate.set_xlabel("seconds since the first request")
    rate.set_ylabel("per second")
    rate.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
