"""Live traffic for canary tests: plain httpx loops without X-Modelship-Source (a user's requests), in threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import numpy as np

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
