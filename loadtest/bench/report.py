"""The bench table, the targets as ratios from the same run, bench.json and bench.png."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest.bench.harness import BenchRun, CaseResult, machine
from loadtest.bench.wrk import describe_loadgen


@dataclass(frozen=True)
class BenchTarget:
    name: str
    op: str  # ">=" or "<="
    limit: float
    unit: str
    observe: Callable[[dict[str, CaseResult], BenchRun], float | None]


def _ratio(
    numerator: str, denominator: str, figure: str = "rps"
) -> Callable[[dict[str, CaseResult], BenchRun], float | None]:
    """numerator's figure (req/s, or p99_ms) over denominator's, both from this run."""

    def observe(rows: dict[str, CaseResult], _run: BenchRun) -> float | None:
        if numerator not in rows or denominator not in rows:
            return None
        below = float(getattr(rows[denominator].load, figure))
        return float(getattr(rows[numerator].load, figure)) / below if below > 0 else None

    return observe


FAMILY_LABELS = {"house-1": "house-price, 1 instance", "iris-1": "iris, 1 instance", "house-100": "batch of 100"}


def fastest(rows: dict[str, CaseResult], family: str, systems: tuple[str, ...]) -> CaseResult | None:
    """The fastest path (highest req/s) any of `systems` has for the workload `family`: each is compared on its best."""
    candidates = [r for r in rows.values() if r.family == family and r.system in systems]
    return max(candidates, key=lambda r: r.load.rps, default=None)


def _vs_fastest(
    family: str, peers: tuple[str, ...], figure: str = "rps"
) -> Callable[[dict[str, CaseResult], BenchRun], float | None]:
    """modelship's fastest path over the peers' fastest, for one workload: req/s, or the p99 of those same paths."""

    def observe(rows: dict[str, CaseResult], _run: BenchRun) -> float | None:
        own, peer = fastest(rows, family, ("modelship",)), fastest(rows, family, peers)
        if own is None or peer is None:
            return None
        below = float(getattr(peer.load, figure))
        return float(getattr(own.load, figure)) / below if below > 0 else None

    return observe


def _field(key: str, attr: str) -> Callable[[dict[str, CaseResult], BenchRun], float | None]:
    def observe(rows: dict[str, CaseResult], _run: BenchRun) -> float | None:
        if key not in rows:
            return None
        row = rows[key]
        return float(row.instances_per_s if attr == "instances_per_s" else getattr(row.load, attr))

    return observe


TARGETS = (
    BenchTarget("house 1-instance req/s vs plain FastAPI without DB", ">=", 1.0, "x",
           _ratio("modelship-house", "plain-fastapi")),
    BenchTarget("house 1-instance req/s vs seed-style", ">=", 30.0, "x", _ratio("modelship-house", "seed-style")),
    BenchTarget("house 1-instance p99 at 32 connections", "<=", 15.0, "ms", _field("modelship-house", "p99_ms")),
    BenchTarget("iris 1-instance req/s vs seed 003 gunicorn Flask", ">=", 8.0, "x",
           _ratio("modelship-iris", "iris-flask")),
    BenchTarget("iris 1-instance p99", "<=", 50.0, "ms", _field("modelship-iris", "p99_ms")),
    BenchTarget("batch of 100, logging on: instances/s", ">=", 50_000.0, "/s",
           _field("modelship-batch", "instances_per_s")),
    BenchTarget("cold start, spawn to /ready 200 (median)", "<=", 1.5, "s",
           lambda _rows, run: run.cold_start_median_s),
    BenchTarget("house 1-instance req/s vs raw ASGI under the same uvicorn", ">=", 0.35, "x",
                _ratio("modelship-house", "raw-asgi")),
    # The same requests sent as `live` (counted in the drift bins) against `bench` (skipped): the counters' cost.
    BenchTarget("drift counters on, 1 instance: req/s vs off", ">=", 0.95, "x",
                _ratio("modelship-house-live", "modelship-house")),
    BenchTarget("drift counters on, batch of 100: req/s vs off", ">=", 0.95, "x",
                _ratio("modelship-batch-live", "modelship-batch")),
    BenchTarget("shadow of every request: p99 vs none", "<=", 1.10, "x",
                _ratio("modelship-shadow", "modelship-house", "p99_ms")),
    # Against the peers of `make bench PEERS=kserve,mlserver` (n/a without them); each side on its fastest
    # path for the workload (modelship: /predict, v1 or v2; KServe: v1 or v2), which `peers:` names.
    BenchTarget("house 1-instance req/s vs KServe, fastest paths", ">=", 3.0, "x", _vs_fastest("house-1", ("kserve",))),
    BenchTarget("batch of 100 req/s vs KServe, fastest paths", ">=", 1.5, "x", _vs_fastest("house-100", ("kserve",))),
    BenchTarget("batch of 100 p99 / KServe's p99, fastest paths", "<=", 1.0, "x",
                _vs_fastest("house-100", ("kserve",), "p99_ms")),
    BenchTarget("iris req/s vs the fastest peer path (batching on)", ">=", 5.0, "x",
                _vs_fastest("iris-1", ("kserve", "mlserver"))),
)  # fmt: skip


def evaluate_targets(run: BenchRun) -> list[dict[str, Any]]:
    rows = {r.key: r for r in run.results}
    verdicts = []
    for target in TARGETS:
        observed = target.observe(rows, run)
        met = (
            None if observed is None else (observed >= target.limit if target.op == ">=" else observed <= target.limit)
        )
        verdicts.append({"target": target.name, "op": target.op, "limit": target.limit, "unit": target.unit,
                         "observed": observed, "met": met})  # fmt: skip
    return verdicts


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _path_cell(row: CaseResult, rows: dict[str, CaseResult]) -> str:
    """The path a row measured; `*` marks its system's fastest for the workload, the one the ratios use."""
    if not row.path:
        return ""
    best = fastest(rows, row.family, (row.system,)) if row.group in ("modelship", "peer") else None
    return row.path + (" *" if best is row else "")


def table(run: BenchRun) -> str:
    rows = {r.key: r for r in run.results}
    header = (f"{'server':<40}{'workload':<27}{'path':<15}{'req/s':>8}{'inst/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
              f"{'srv µs/req':>11}{'db µs/req':>10}{'gen %':>6}{'errors':>7}{'rows/2xx':>9}{'ready s':>8}")  # fmt: skip
    lines = [header, "-" * len(header)]
    for r in run.results:
        logged = None if r.rows_logged is None else r.rows_logged / max(r.answered_total, 1)
        gen_pct = 100 * r.load.loadgen_cpu_s / r.load.duration_s
        lines.append(
            f"{r.label[:39]:<40}{r.workload[:26]:<27}{_path_cell(r, rows)[:14]:<15}"
            f"{r.load.rps:>8,.0f}{r.instances_per_s:>9,.0f}{r.load.p50_ms:>8.2f}{r.load.p99_ms:>8.2f}{r.server_cpu_us:>11,.0f}{_fmt(r.db_cpu_us):>10}"
            f"{gen_pct:>6.0f}{r.load.errors:>7}{_fmt(logged, 3):>9}{r.ready_s:>8.2f}"
        )
    lines += [f"{key:<40}FAILED: {reason}" for key, reason in run.failures.items()]
    if any(r.path for r in run.results):
        lines.append("path: * marks each system's fastest path for the workload, the one the peer ratios use")
    return "\n".join(lines)


def targets_text(verdicts: list[dict[str, Any]]) -> str:
    lines = ["targets, ratios from this run:"]
    for v in verdicts:
        status = "n/a " if v["met"] is None else ("MET " if v["met"] else "MISS")
        digits = 2 if v["unit"] in ("x", "ms", "s") else 0
        lines.append(f"  {status} {v['target']:<50} {_fmt(v['observed'], digits):>10} {v['op']} "
                     f"{v['limit']:,g} {v['unit']}")  # fmt: skip
    return "\n".join(lines)


def ratios_text(run: BenchRun) -> str:
    rows = {r.key: r for r in run.results}
    house = rows.get("modelship-house")
    parts = [f"{r.key} {house.load.rps / r.load.rps:.2f}x" for r in run.results
             if house and r.group == "baseline" and r.workload == house.workload and r.load.rps > 0]  # fmt: skip
    baselines = "modelship house-price req/s vs: " + ", ".join(parts) if parts else ""
    return (baselines + _peer_ratios(rows)).strip()


def _peer_ratios(rows: dict[str, CaseResult]) -> str:
    """Per workload and peer: modelship's fastest path against the peer's fastest, each path named."""
    lines = []
    for family, label in FAMILY_LABELS.items():
        own = fastest(rows, family, ("modelship",))
        for peer in sorted({r.system for r in rows.values() if r.group == "peer" and r.family == family}):
            theirs = fastest(rows, family, (peer,))
            if own is None or theirs is None or theirs.load.rps <= 0:
                continue
            lines.append(f"  {label}: modelship {own.path} vs {peer} {theirs.path}: "
                         f"req/s {own.load.rps:,.0f} vs {theirs.load.rps:,.0f} "
                         f"= {own.load.rps / theirs.load.rps:.2f}x, "
                         f"p99 {own.load.p99_ms:.1f} vs {theirs.load.p99_ms:.1f} ms, "
                         f"CPU {own.server_cpu_us:,.0f} vs {theirs.server_cpu_us:,.0f} µs/req")  # fmt: skip
    return "\npeers, each side on its fastest path:\n" + "\n".join(lines) if lines else ""


def _context_text(run: BenchRun) -> str:
    settings, box = run.settings, machine()
    return (
        f"{settings.connections} connections, {settings.duration_s:g} s measured after {settings.warmup_s:g} s "
        f"warm-up, medians of {settings.rounds} interleaved round(s), {settings.workers} uvicorn workers; "
        f"{box['cpus']} CPUs, load average (1/5/15 min) at the end "
        f"{box['load_average_1_5_15']}; models {', '.join(run.versions.values())}"
        f"\nload generator: {describe_loadgen(settings.loadgen)}"
    )


def to_json(run: BenchRun, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    results = []
    for r in run.results:
        entry = asdict(r)
        entry["instances_per_s"] = r.instances_per_s
        entry["load"]["statuses"] = {str(k): v for k, v in r.load.statuses.items()}
        results.append(entry)
    settings = asdict(run.settings) | {"only": sorted(run.settings.only)}
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine() | {"python": platform.python_version()},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
        "model_versions": run.versions,
        "loadgen": describe_loadgen(run.settings.loadgen),
        "results": results,
        "first_start_s": run.first_start_s,
        "cold_starts_s": run.cold_starts_s,
        "failures": run.failures,
        "targets": verdicts,
    }


def chart(run: BenchRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.label}\n({r.workload})" for r in run.results][::-1]
    results = run.results[::-1]
    colors = ["tab:blue" if r.group == "modelship" else "tab:gray" for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.55 * len(results) + 2), sharey=True)
    panels = (
        ("requests/s (log)", [r.load.rps for r in results], True),
        ("p99 latency, ms (log)", [r.load.p99_ms for r in results], True),
        ("CPU µs per request: server + Postgres", [r.server_cpu_us for r in results], False),
    )
    for ax, (title, values, log_scale) in zip(axes, panels, strict=True):
        ax.barh(labels, values, color=colors)
        if log_scale:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3, which="both")
        for y, (value, row) in enumerate(zip(values, results, strict=True)):
            text = f"{value:,.0f}" if value >= 10 else f"{value:.2f}"
            if ax is axes[0] and row.instances_per_request > 1:
                text += f" ({row.instances_per_s:,.0f} instances/s)"
            ax.annotate(text, (value, y), fontsize=7, xytext=(3, -3), textcoords="offset points")
    axes[2].barh(labels, [r.db_cpu_us or 0.0 for r in results], left=[r.server_cpu_us for r in results],
                 color="tab:orange", label="Postgres")  # fmt: skip
    axes[2].legend(fontsize=8)
    settings = run.settings
    fig.suptitle(f"modelship bench: {settings.connections} connections, {settings.duration_s:g} s after "
                 f"{settings.warmup_s:g} s warm-up, {settings.workers} uvicorn workers, same host")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_reports(run: BenchRun, out_dir: Path) -> tuple[str, Path, Path]:
    """Write bench.json, bench.txt and bench.png; return the text shown on screen."""
    out_dir.mkdir(parents=True, exist_ok=True)
    verdicts = evaluate_targets(run)
    cold = ", ".join(f"{s:.2f} s" for s in run.cold_starts_s) or "not measured"
    if run.cold_starts_s:
        cold += f" (the first start before them: {run.first_start_s:.2f} s)"
    text = "\n\n".join(
        part for part in (
            table(run),
            ratios_text(run),
            f"cold start (spawn to /ready 200, one worker, Postgres up): {cold}",
            targets_text(verdicts),
            _context_text(run),
        ) if part
    )  # fmt: skip
    json_path = out_dir / "bench.json"
    json_path.write_text(json.dumps(to_json(run, verdicts), indent=2) + "\n")
    (out_dir / "bench.txt").write_text(text + "\n")
    png = chart(run, out_dir / "bench.png") if run.results else out_dir / "bench.png"
    return text, json_path, png
