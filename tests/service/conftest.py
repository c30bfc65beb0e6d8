from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture
def make_client(pg_url: str, house_artifact: Path, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """In-process app with its lifespan, against the real PostgreSQL."""
    clients: list[TestClient] = []

    def factory(artifact: Path | None = None, **overrides: Any) -> TestClient:
        settings = Settings(
            model_dir=artifact or house_artifact,
            database_url=pg_url,
            data_dir=tmp_path,
            spool_dir=tmp_path / f"spool{len(clients)}",
            access_log=False,
            **overrides,
        )
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
