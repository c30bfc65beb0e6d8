"""Run the benchmark matrix: one Postgres, each server fresh, the same closed-loop load for each."""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from loadtest.bench import tables
from loadtest.bench.cases import Case, build_cases, service_spec
from loadtest.bench.loadgen import LoadError, LoadResult, run_load
from loadtest.bench.servers import RunningServer, ServerError, ServerSpec, start_server, tree_cpu_seconds
from model.manifest import Manifest
from pipelines.devtools.embedded_pg import EmbeddedPostgres

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchSettings:
    out_dir: Path
    artifacts_dir: Path
    duration_s: float = 10.0
    warmup_s: float = 2.0
    connections: int = 32
    workers: int = os.cpu_count() or 1
    cold_starts: int = 3
    only: frozenset[str] = frozenset()
    service_env: tuple[tuple[str, str], ...] = ()  # extra MODELSHIP_* settings, to try a lever
    bytecode_cache: bool = True  # see server_environment()
    peers: tuple[str, ...] = ()  # serving frameworks beside modelship: kserve, mlserver (loadtest/bench/peers.py)
    rounds: int = 1  # interleaved rounds: every case once per round, medians reported
    loadgen: str = "python"  # "wrk" (loadtest/bench/wrk.py, the default when installed) or "python" (loadgen.py)


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
    rounds_rps: tuple[float, ...] = ()  # each round's req/s, in round order, when there were several
    system: str = ""  # see Case
    path: str = ""
    family: str = ""

    @property
    def instances_per_s(self) -> float:
        return self.load.rps * self.instances_per_request


@dataclass(frozen=True)
class BenchRun:
    settings: BenchSettings
    results: list[CaseResult]
    first_start_s: float  # the first cold start, which may compile bytecode; not in the median
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


@dataclass(frozen=True)
class _Context:
    settings: BenchSettings
    pg: _Postgres
    scratch: Path
    log_dir: Path
    base_env: dict[str, str]

    def start(self, spec: ServerSpec) -> RunningServer:
        return start_server(spec, free_port(), self.log_dir, REPO_ROOT, self.base_env)


def server_environment(settings: BenchSettings) -> dict[str, str]:
    """The servers' environment: this one, with bytecode cached under the output folder.

    Without cached bytecode every start compiles scikit-learn, SciPy and FastAPI from source (about 2.5 s of
    CPU here, where PYTHONDONTWRITEBYTECODE=1 and the virtualenv holds no .pyc). The image has them: pip
    compiles at install time. A private PYTHONPYCACHEPREFIX keeps the shared virtualenv untouched.
    """
    env = dict(os.environ)
    if settings.bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str((settings.out_dir / "pycache").absolute())
    return env


PRIMED_MODULES = (
    "service.app", "sklearn.pipeline", "sklearn.ensemble", "sklearn.linear_model", "sklearn.preprocessing",
    "uvicorn.main", "uvicorn.protocols.http.httptools_impl", "uvicorn.lifespan.on", "uvicorn.loops.uvloop",
    "flask", "gunicorn.app.wsgiapp", "gunicorn.workers.sync", "psycopg", "psycopg_pool", "fastapi",
)  # fmt: skip


def prime_bytecode(env: dict[str, str]) -> None:
    """Compile what the servers import into the bytecode cache once, so no measured start pays for it."""
    if "PYTHONPYCACHEPREFIX" not in env:
        return
    started = time.perf_counter()
    code = f"import importlib\nfor m in {PRIMED_MODULES!r}: importlib.import_module(m)"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, check=True, timeout=300)
    log.info("bytecode cache primed in %.1f s", time.perf_counter() - started)


def run_case(case: Case, ctx: _Context) -> CaseResult:
    settings, pg = ctx.settings, ctx.pg
    table = case.server.log_table
    rows_before = pg.rows(table) if table else 0
    server = ctx.start(case.server)
    samples: dict[str, tuple[float, float]] = {}
    if case.workload.path.startswith(("/v1/", "/v2/")):
        _check_before_timing(case, server)

    def on_window(phase: str) -> None:
        samples[phase] = (server.cpu_seconds(), pg.cpu_seconds())

    try:
        load = _drive(case, server.port, settings, on_window)
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
        system=case.system,
        path=case.path,
        family=case.workload.family,
    )


def _drive(case: Case, port: int, settings: BenchSettings, on_window: Callable[[str], None]) -> LoadResult:
    """The load, through the generator the settings name; both measure only the window after the warm-up."""
    if settings.loadgen == "wrk":
        from loadtest.bench.wrk import run_wrk

        return run_wrk(
            "127.0.0.1", port, case.workload.path, case.workload.bodies,
            connections=settings.connections, warmup_s=settings.warmup_s, duration_s=settings.duration_s,
            expect=case.workload.expect, on_window=on_window, source=case.workload.source,
        )  # fmt: skip
    return run_load(
        "127.0.0.1", port, case.workload.requests(port),
        connections=settings.connections, warmup_s=settings.warmup_s, duration_s=settings.duration_s,
        expect=case.workload.expect, on_window=on_window,
    )  # fmt: skip


def _check_before_timing(case: Case, server: RunningServer) -> None:
    """A v1 or v2 server's first answer must equal scikit-learn's before it is timed (and name our version)."""
    from loadtest.bench.peer_cases import check_answers, model_dir_of

    model_dir = model_dir_of(case)
    try:
        if model_dir is not None:
            check_answers(server.port, case.workload, model_dir, check_version=case.system == "modelship")
    except (AssertionError, OSError, ValueError) as exc:
        server.stop()
        raise ServerError(f"{case.key} answers wrongly, not timed: {exc}") from None


def measure_cold_starts(model_dir: Path, ctx: _Context) -> tuple[float, list[float]]:
    """Spawn to the first 200 from /ready with the container's command (one worker), Postgres up.

    Returns the first, untimed-for-the-target start (it may compile bytecode and fill the page cache),
    then `cold_starts` timed starts.
    """
    spec = service_spec("cold-start", model_dir, ctx.pg.url, ctx.scratch, 1, dict(ctx.settings.service_env))
    durations = []
    for _ in range(ctx.settings.cold_starts + 1):
        server = ctx.start(spec)
        durations.append(server.ready_s)
        server.stop()
    return durations[0], durations[1:]


def _run_cases(cases: list[Case], ctx: _Context) -> tuple[list[CaseResult], dict[str, str]]:
    """Every case once per round, rounds interleaved (A B C, A B C, ...), so a slow spell of the machine
    spreads over all servers instead of landing on one; each case reports its medians over the rounds."""
    per_case: dict[str, list[CaseResult]] = {}
    failures: dict[str, str] = {}
    for number in range(1, ctx.settings.rounds + 1):
        for case in (c for c in cases if c.key not in failures):
            log.info("round %d/%d %-16s starting (%s, %.0f s)", number, ctx.settings.rounds, case.key,
                     case.workload.key, ctx.settings.duration_s)  # fmt: skip
            try:
                result = run_case(case, ctx)
            except (ServerError, LoadError) as exc:
                failures[case.key] = str(exc).splitlines()[0]
                log.error("%-16s FAILED: %s (log in %s)", case.key, failures[case.key], ctx.log_dir)
                continue
            per_case.setdefault(case.key, []).append(result)
            log.info("%-16s %8.0f req/s  p99 %6.1f ms", case.key, result.load.rps, result.load.p99_ms)
            time.sleep(0.5)  # let the previous server's sockets and CPU settle
    results = [median_result(per_case[c.key]) for c in cases if c.key in per_case and c.key not in failures]
    return results, failures


def median_result(rounds: list[CaseResult]) -> CaseResult:
    """One row for a case: the median of each figure over its rounds; errors and answers summed."""
    if len(rounds) == 1:
        return rounds[0]

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    loads = [r.load for r in rounds]
    load = replace(
        loads[0],
        answers=sum(x.answers for x in loads), errors=sum(x.errors for x in loads),
        statuses={k: sum(x.statuses.get(k, 0) for x in loads) for k in {k for x in loads for k in x.statuses}},
        rps=med([x.rps for x in loads]), p50_ms=med([x.p50_ms for x in loads]), p90_ms=med([x.p90_ms for x in loads]),
        p99_ms=med([x.p99_ms for x in loads]), max_ms=max(x.max_ms for x in loads),
        mean_ms=med([x.mean_ms for x in loads]), loadgen_cpu_s=med([x.loadgen_cpu_s for x in loads]),
        answered_total=sum(x.answered_total for x in loads),
    )  # fmt: skip
    db = [r.db_cpu_us for r in rounds if r.db_cpu_us is not None]
    logged = [r.rows_logged for r in rounds if r.rows_logged is not None]
    return replace(
        rounds[0], load=load, server_cpu_us=med([r.server_cpu_us for r in rounds]), db_cpu_us=med(db) if db else None,
        ready_s=med([r.ready_s for r in rounds]), rows_logged=sum(logged) if logged else None,
        answered_total=load.answered_total, rounds_rps=tuple(r.load.rps for r in rounds),
    )  # fmt: skip


def _train(artifacts: Path) -> tuple[Path, Path, dict[str, Manifest]]:
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


def run_bench(settings: BenchSettings, postgres: EmbeddedPostgres | None = None) -> BenchRun:
    """Train (or reuse) both models, start Postgres, run every selected case, then the cold starts.

    Args:
        settings: durations, concurrency, workers and the subset of cases.
        postgres: a server to use (and leave running) instead of a fresh one in a scratch folder.

    Returns:
        Every case's figures, the cold starts, the model versions and the cases that failed to run.
    """
    house_dir, iris_dir, manifests = _train(settings.artifacts_dir)
    with _scratch() as scratch:
        pg = _Postgres(postgres or EmbeddedPostgres(scratch / "pg"))
        ctx = _Context(settings, pg, scratch, settings.out_dir / "logs", server_environment(settings))
        prime_bytecode(ctx.base_env)
        try:
            cases = build_cases(
                house_dir, iris_dir, manifests["house-price"], manifests["iris"], pg.url, scratch,
                settings.workers, dict(settings.service_env),
            )  # fmt: skip
            cases = [c for c in cases if not settings.only or c.key in settings.only]
            if settings.peers:
                from loadtest.bench.peer_cases import peer_cases

                cases += [c for c in peer_cases(
                    settings.peers, house_dir, iris_dir, manifests["house-price"], manifests["iris"], pg.url,
                    scratch, settings.workers, dict(settings.service_env),
                ) if not settings.only or c.key in settings.only]  # fmt: skip
            results, failures = _run_cases(cases, ctx)
            first, cold = float("nan"), list[float]()
            if not settings.only or "cold-start" in settings.only:
                first, cold = measure_cold_starts(house_dir, ctx)
        finally:
            if postgres is None:
                pg.stop()
    versions = {name: m.version for name, m in manifests.items()}
    return BenchRun(settings, results, first, cold, versions, failures)


def machine() -> dict[str, object]:
    """The box, and how busy it was: other work on the same cores moves every figure."""
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
