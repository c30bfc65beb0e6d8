"""Fixtures of the rehearsal: the stand-in Pulumi environment, killed clean at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rehearsal.standin_env import kill_all, leftovers, standin_env


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The env that puts the stand-in `pulumi` on PATH with a fresh file:// backend; every service process and
    Postgres it starts is stopped at teardown, whatever the tests left running."""
    env = standin_env(Path(tmp_path_factory.mktemp("standin")))
    yield env
    kill_all(env)
    assert leftovers(env) == [], "the stand-in left processes running"
