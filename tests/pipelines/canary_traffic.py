"""Helpers of the canary and shadow tests: live traffic (httpx loops without X-Modelship-Source, in threads), a
deployed local stack with the env for the CLI, and who answers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from pipelines.deploy import deploy
from pipelines.devtools.embedded_pg import free_port
from pipelines.settings import PipelineSettings
from pipelines.targets.local import LocalStack, LocalTarget
from service.sources import SOURCE_HEADER


def house_request(rng: np.random.Generator) -> dict[str, float]:
    return {"size": float(rng.uniform(800, 3500)), "bedrooms": int(rng.integers(1, 6)), "age": int(rng.integers(0, 40))}


def _loop(url: str, stop: threading.Event, seed: int, source: str | None) -> None:
    rng = np.random.default_rng(seed)
    headers = {SOURCE_HEADER: source} if source else {}
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            response = client.post(f"{url}/predict", json=house_request(rng), headers=headers)
            response.raise_for_status()


@contextmanager
def traffic(urls: Sequence[str], source: str | None = None) -> Iterator[None]:
    """Send requests to every URL, one thread each, the same input distribution, until the block ends."""
    stop = threading.Event()
    threads = [threading.Thread(target=_loop, args=(u, stop, i, source), daemon=True) for i, u in enumerate(urls)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)


def versions(url: str, n: int) -> Counter[str]:
    """N requests, each on a new connection (a fresh client, as kube-proxy balances), counted by the version."""
    found: Counter[str] = Counter()
    for _ in range(n):
        with httpx.Client(timeout=10) as client:
            found[client.get(f"{url}/model").json()["version"]] += 1
    return found


@contextmanager
def deployed_local_stack(stack: str, artifact: Path, prefix: str) -> Iterator[tuple[LocalStack, dict[str, str]]]:
    """A local stack serving ARTIFACT, and the env that points `python -m pipelines` at it; destroyed after."""
    # Not under pytest's basetemp (0700): the embedded Postgres' own user must reach its data folder.
    base = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    settings = PipelineSettings(state_dir=base / "state", reports_dir=base / "reports", local_ports={stack: port})
    target = LocalTarget(settings)
    deploy(target, stack, artifact, message="stable")
    env = dict(os.environ, MODELSHIP_PIPELINE_STATE_DIR=str(settings.state_dir),
               MODELSHIP_PIPELINE_REPORTS_DIR=str(settings.reports_dir),
               MODELSHIP_PIPELINE_LOCAL_PORTS=json.dumps({stack: port}))  # fmt: skip
    try:
        yield target.select(stack), env
    finally:
        target.select(stack).destroy()
        shutil.rmtree(base, ignore_errors=True)
