"""The benchmark matrix: which server runs which workload, all on 127.0.0.1 against one Postgres."""

from __future__ import annotations

import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from loadtest.bench import tables
from loadtest.bench.loadgen import encode_post
from loadtest.bench.servers import ServerSpec
from loadtest.checks import random_instance
from model.manifest import Manifest
from service.sources import BENCH, LIVE

PY = sys.executable
VARIANTS = 64  # distinct bodies per workload, cycled: no server can cache one answer
BATCH_SIZE = 100


@dataclass(frozen=True)
class Workload:
    key: str
    bodies: tuple[bytes, ...]
    instances: int = 1  # per request
    path: str = "/predict"
    expect: bytes = b'"prediction'  # must appear in every 2xx body
    family: str = ""  # the rows it sends ("house-1", "iris-1", "house-100"): what the servers are compared on
    source: str = BENCH  # X-Modelship-Source: `live` makes modelship count drift on it, as on users' requests

    def requests(self, port: int) -> list[bytes]:
        return [encode_post("127.0.0.1", port, self.path, body, self.source) for body in self.bodies]


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    server: ServerSpec
    workload: Workload
    group: str  # "modelship", "baseline" or "peer"
    system: str = ""  # who serves: "modelship", "kserve", "mlserver" (a baseline: its key)
    path: str = ""  # how: "/predict", "v1", "v2", "v2, batching"; each system is compared on its fastest


def _instances(manifest: Manifest, seed: int, count: int) -> list[dict[str, float | int]]:
    rng = random.Random(seed)
    return [random_instance(manifest, rng) for _ in range(count)]


def workloads(house: Manifest, iris: Manifest) -> dict[str, Workload]:
    """Same values for every server of a model family; only the envelope differs (seed 003 wants a list)."""
    house_rows = _instances(house, 1, VARIANTS)
    iris_rows = _instances(iris, 2, VARIANTS)
    iris_names = iris.feature_names
    batches = [_instances(house, 100 + i, BATCH_SIZE) for i in range(16)]
    return {
        "house-1": Workload("house-price, 1 instance", tuple(orjson.dumps(r) for r in house_rows), family="house-1"),
        "iris-1": Workload("iris, 1 instance", tuple(orjson.dumps(r) for r in iris_rows), family="iris-1"),
        "iris-1-seed003": Workload(
            "iris, 1 instance",
            tuple(orjson.dumps({"input": [r[n] for n in iris_names]}) for r in iris_rows),
        ),
        "house-100": Workload(
            f"house-price, batch of {BATCH_SIZE}",
            tuple(orjson.dumps({"instances": b}) for b in batches),
            instances=BATCH_SIZE,
            expect=b'"predictions"',
            family="house-100",
        ),
    }


def _uvicorn(target: str, workers: int, factory: bool) -> tuple[str, ...]:
    argv = [PY, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "{port}", "--no-access-log"]
    argv += ["--factory"] if factory else []
    argv += ["--workers", str(workers)] if workers > 1 else []
    return tuple(argv)


def service_spec(
    key: str, model_dir: Path, db_url: str, scratch: Path, workers: int, extra_env: Mapping[str, str]
) -> ServerSpec:
    """The modelship service with the Dockerfile's command (plus --workers when more than one)."""
    from service.run import UVICORN  # the CMD's arguments, kept in step with the Dockerfile

    argv = (PY, "-m", *UVICORN, "--host", "127.0.0.1", "--port", "{port}")
    argv += ("--workers", str(workers)) if workers > 1 else ()
    env = {
        "MODELSHIP_MODEL_DIR": str(model_dir),
        "DATABASE_URL": db_url,
        "MODELSHIP_DATA_DIR": str(scratch / "modelship"),
        "MODELSHIP_SPOOL_DIR": str(scratch / f"spool-{key}"),
        **extra_env,
    }
    return ServerSpec(key, "modelship", argv, env, ready_path="/ready", log_table="predictions")


def _gunicorn(target: str) -> tuple[str, ...]:
    return (PY, "-m", "gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "2", target)


def build_cases(
    house_dir: Path, iris_dir: Path, house: Manifest, iris: Manifest, db_url: str,
    scratch: Path, workers: int, service_env: Mapping[str, str],
) -> list[Case]:  # fmt: skip
    load = workloads(house, iris)
    house_env = {"BENCH_MODEL_DIR": str(house_dir), "DATABASE_URL": db_url}
    iris_env = {"BENCH_MODEL_DIR": str(iris_dir)}
    bench = "loadtest.bench."

    def service(key: str, model_dir: Path) -> ServerSpec:
        return service_spec(key, model_dir, db_url, scratch, workers, service_env)

    def asgi(key: str, target: str, env: Mapping[str, str], factory: bool = True) -> ServerSpec:
        return ServerSpec(
            key,
            key,
            _uvicorn(bench + target, workers, factory),
            env,
            log_table=tables.NAIVE_TABLE if key == "naive-fastapi" else None,
        )

    seed = ServerSpec("seed-style", "seed", _gunicorn(bench + "seed_flask:app"), house_env, log_table=tables.SEED_TABLE)
    iris_flask = ServerSpec("iris-flask", "iris-flask", _gunicorn(bench + "iris_flask:app"), iris_env)

    def modelship(key: str, label: str, model_dir: Path, workload: Workload, env: Mapping[str, str] = {}) -> Case:
        spec = service_spec(key, model_dir, db_url, scratch, workers, {**service_env, **env}) if env else None
        return Case(f"modelship-{key}", label, spec or service(key, model_dir), workload, "modelship", "modelship",
                    "/predict")  # fmt: skip

    return [
        modelship("house", "modelship, house-price", house_dir, load["house-1"]),
        modelship("shadow", "modelship, house-price, shadow of every request", house_dir, load["house-1"],
                  shadow_env(house_dir)),
        modelship("house-live", "modelship, house-price, live (drift counted)", house_dir, live(load["house-1"])),
        modelship("iris", "modelship, iris", iris_dir, load["iris-1"]),
        modelship("batch", "modelship, batch of 100", house_dir, load["house-100"]),
        modelship("batch-live", "modelship, batch of 100, live (drift counted)", house_dir, live(load["house-100"])),
        Case("seed-style", "seed-style Flask+gunicorn, conn/request", seed, load["house-1"], "baseline"),
        Case("naive-fastapi", "naive FastAPI, pooled INSERT/request",
             asgi("naive-fastapi", "naive_fastapi:create_app", house_env), load["house-1"], "baseline"),
        Case("plain-fastapi", "plain FastAPI, no database",
             asgi("plain-fastapi", "plain_fastapi:create_app", house_env), load["house-1"], "baseline"),
        Case("raw-asgi", "raw ASGI floor (no model)", asgi("raw-asgi", "raw_asgi:app", {}, factory=False),
             load["house-1"], "baseline"),
        Case("iris-flask", "seed 003 iris Flask+gunicorn", iris_flask, load["iris-1-seed003"], "baseline"),
    ]  # fmt: skip


def live(workload: Workload) -> Workload:
    """The same requests sent as users' traffic: modelship counts their drift bins, which it skips for `bench`."""
    return replace(workload, source=LIVE)


def shadow_env(challenger: Path) -> dict[str, str]:
    """A challenger (the same model: the same cost again) copied every request, the bench's own included."""
    return {"MODELSHIP_SHADOW_MODEL_DIR": str(challenger), "MODELSHIP_SHADOW_SAMPLE": "1",
            "MODELSHIP_SHADOW_SOURCES": "live,bench"}  # fmt: skip
