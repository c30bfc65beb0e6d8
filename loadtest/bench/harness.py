"""Run the benchmark matrix: one Postgres, each server fresh, the same closed-loop load for each."""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from loadtest.bench import tables
from loadtest.bench.cases import Case, build_cases, service_spec
from loadtest.bench.loadgen import LoadError, LoadResult, run_load
from loadtest.bench.servers import RunningServer, ServerError, start_server, tree_cpu_seconds
from service.embedded_pg import EmbeddedPostgres

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    out_dir: Path
    artifacts_dir: Path
    duration_s: float = 10.0
    warmup_s: float = 2.0
    connections: int = 32
    workers: int = os.cpu_count() or 1
    cold_starts: int = 3
    only: frozenset[str] = frozenset()
    service_env: tuple[tuple[str, str], ...] = ()  # extra MODELSHIP_* settings, to try a lever


@dataclass(frozen=True)
class CaseResult:
    key: str
    label: str
    group: str
    workload: str
    instances_per_request: int
    load: LoadResult
    server_cpu_us: float  # per answered request, server process tree
    db_cpu_us: float | None  # per answered request, the whole Postgres (all backends)
    ready_s: float
    rows_logged: int | None  # rows the server's log table gained over the whole run
    answered_total: int  # 2xx over the whole run, warm-up included

    @property
    def instances_per_s(self) -> float:
        return self.load.rps * self.instances_per_request


@dataclass(frozen=True)
class BenchRun:
    settings: Settings
    results: list[CaseResult]
    cold_starts_s: list[float]
    versions: dict[str, str]
    failures: dict[str, str]

    @property
    def cold_start_median_s(self) -> float | None:
        return statistics.median(self.cold_starts_s) if self.cold_starts_s else None


class _Postgres:
    """The embedded PostgreSQL 16 of the service, with the baselines' tables."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server
        self.url = self.server.start()  # reuses a running server
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL(tables.SEED_DDL))
            conn.execute(sql.SQL(tables.NAIVE_DDL))

    def cpu_seconds(self) -> float:
        pid = int((self.server.pgdata / "postmaster.pid").read_text().split()[0])
        return tree_cpu_seconds(pid)

    def rows(self, table: str) -> int:
        with psycopg.connect(self.url) as conn:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if not exists or not exists[0]:
                return 0
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            return int(row[0]) if row else 0

    def stop(self) -> None:
        self.server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_case(case: Case, settings: Settings, pg: _Postgres, log_dir: Path) -> CaseResult:
    table = case.server.log_table
    rows_before = pg.rows(table) if table else 0
    server = start_server(case.server, free_port(), log_dir, REPO_ROOT)
    samples: dict[str, tuple[float, float]] = {}

    def on_window(phase: str) -> None:
        samples[phase] = (server.cpu_seconds(), pg.cpu_seconds())

    try:
        load = run_load(
            "127.0.0.1", server.port, case.workload.requests(server.port),
            connections=settings.connections, warmup_s=settings.warmup_s, duration_s=settings.duration_s,
            expect=case.workload.expect, on_window=on_window,
        )  # fmt: skip
    finally:
        server.stop()  # graceful: the service drains its log queue before exiting
    answered = max(load.answers - load.errors, 1)
    server_cpu = samples["end"][0] - samples["start"][0]
    db_cpu = samples["end"][1] - samples["start"][1]
    return CaseResult(
        key=case.key,
        label=case.label,
        group=case.group,
        workload=case.workload.key,
        instances_per_request=case.workload.instances,
        load=load,
        server_cpu_us=server_cpu / answered * 1e6,
        db_cpu_us=db_cpu / answered * 1e6 if table else None,
        ready_s=server.ready_s,
        rows_logged=pg.rows(table) - rows_before if table else None,
        answered_total=load.answered_total,
    )


def measure_cold_starts(
    model_dir: Path, pg: _Postgres, scratch: Path, log_dir: Path, times: int, service_env: tuple[tuple[str, str], ...]
) -> list[float]:
    """Process spawn to the first 200 from /ready, exactly the container's command (one worker)."""
    spec = service_spec("cold-start", model_dir, pg.url, scratch, 1, dict(service_env))
    durations = []
    for _ in range(times):
        server: RunningServer = start_server(spec, free_port(), log_dir, REPO_ROOT)
        durations.append(server.ready_s)
        server.stop()
    return durations


def _train(artifacts: Path) -> tuple[Path, Path, dict[str, dict[str, object]]]:
    from model.train import train

    house, iris = train("house-price", artifacts), train("iris", artifacts)
    return house.path, iris.path, {"house-price": house.manifest, "iris": iris.manifest}


@contextmanager
def _scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="modelship-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_bench(settings: Settings, postgres: EmbeddedPostgres | None = None) -> BenchRun:
    """Train (or reuse) both models, start Postgres, run every selected case, then the cold starts.

    Args:
        settings: durations, concurrency, workers and the subset of cases.
        postgres: a server to use (and leave running) instead of a fresh one in a scratch folder.

    Returns:
        Every case's figures, the cold starts, the model versions and the cases that failed to run.
    """
    house_dir, iris_dir, manifests = _train(settings.artifacts_dir)
    log_dir = settings.out_dir / "logs"
    with _scratch() as scratch:
        pg = _Postgres(postgres or EmbeddedPostgres(scratch / "pg"))
        try:
            cases = build_cases(
                house_dir, iris_dir, manifests["house-price"], manifests["iris"], pg.url, scratch,
                settings.workers, dict(settings.service_env),
            )  # fmt: skip
            selected = [c for c in cases if not settings.only or c.key in settings.only]
            results = []
            failures: dict[str, str] = {}
            for case in selected:
                log.info("%-16s starting (%s, %.0f s)", case.key, case.workload.key, settings.duration_s)
                try:
                    r = run_case(case, settings, pg, log_dir)
                except (ServerError, LoadError) as exc:
                    failures[case.key] = str(exc).splitlines()[0]
                    log.error("%-16s FAILED: %s (log in %s)", case.key, failures[case.key], log_dir)
                    continue
                results.append(r)
                log.info("%-16s %8.0f req/s  p99 %6.1f ms", case.key, r.load.rps, r.load.p99_ms)
                time.sleep(0.5)  # let the previous server's sockets and CPU settle
            cold = []
            if not settings.only or "cold-start" in settings.only:
                cold = measure_cold_starts(house_dir, pg, scratch, log_dir, settings.cold_starts, settings.service_env)
        finally:
            if postgres is None:
                pg.stop()
    versions = {name: str(m["version"]) for name, m in manifests.items()}
    return BenchRun(settings, results, cold, versions, failures)


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}
