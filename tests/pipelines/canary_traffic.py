"""Helpers of the canary and shadow tests: live traffic (httpx loops without X-Modelship-Source, in threads, or
Locust's LiveUser), a deployed local stack with the env for the CLI, and who answers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess  # nosec B404
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from loadtest.run import API_KEY_ENV
from pipelines.deploy import deploy
from pipelines.devtools.embedded_pg import free_port
from pipelines.settings import PipelineSettings
from pipelines.targets.local import LocalStack, LocalTarget
from service.sources import SOURCE_HEADER

ROOT = Path(__file__).resolve().parents[2]
LIVE_LOCUSTFILE = ROOT / "loadtest" / "live.py"


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


@contextmanager
def live_users(
    url: str, out: Path, users: int = 6, api_key: str = "", wait: str = "", env: Mapping[str, str] | None = None
) -> Iterator[dict[str, int]]:
    """Locust's LiveUser against the Service while the block runs; afterwards, its request and failure counts.
    API_KEY goes where the locustfiles read it; WAIT ("0.1,0.3") sets the users' pause between requests."""
    out.mkdir(parents=True, exist_ok=True)
    stats = out / "live"  # Locust writes <stats>.json as it shuts down, SIGTERM included
    argv = [sys.executable, "-m", "locust", "-f", str(LIVE_LOCUSTFILE), "--headless", "--host", url,
            "-u", str(users), "-r", str(users), "-t", "3600s", "--json-file", str(stats), "--only-summary",
            "--stop-timeout", "5"]  # fmt: skip
    process_env = {**(env if env is not None else os.environ)}
    process_env |= {API_KEY_ENV: api_key} if api_key else {}
    process_env |= {"MODELSHIP_LIVE_WAIT": wait} if wait else {}
    counts: dict[str, int] = {}
    with (out / "locust.log").open("w") as log:
        locust = subprocess.Popen(argv, cwd=ROOT, env=process_env, stdout=log, stderr=subprocess.STDOUT)  # nosec B603
        try:
            yield counts
        finally:
            locust.send_signal(signal.SIGTERM)  # Locust stops its users, then saves the final stats
            locust.wait(60)
    entries = json.loads(stats.with_suffix(".json").read_text())
    live = [e for e in entries if e["name"] == "/predict [live]"]
    counts.update(requests=sum(e["num_requests"] for e in live), failures=sum(e["num_failures"] for e in entries))
