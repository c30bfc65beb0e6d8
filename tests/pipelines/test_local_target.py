"""The local target's bookkeeping; the e2e test runs it for real with uvicorn and Postgres."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from pipelines.errors import ConfigError, StackBusyError, StageError, UpdateFailedError
from pipelines.settings import PipelineSettings
from pipelines.targets.base import ARTIFACT_DIR_KEY, MODEL_VERSION_KEY
from pipelines.targets.local import LocalTarget, local_port


def test_ports() -> None:
    ports = {"dev": 8101, "staging": 8102, "prod": 8103}
    assert [local_port(s, ports) for s in ("dev", "staging", "prod")] == [8101, 8102, 8103]
    assert local_port("pr-12", ports) == 8212
    assert local_port("pr-512", ports) == 8212 + 0  # wraps: 8200 + 512 % 500
    other = local_port("feature-x", ports)
    assert 8700 <= other < 8900 and other == local_port("feature-x", ports)


@pytest.fixture
def target(tmp_path: Path) -> LocalTarget:
    return LocalTarget(PipelineSettings(state_dir=tmp_path / "state", local_ports={"t": 8799}))


def test_select_checks_names_and_existence(target: LocalTarget) -> None:
    with pytest.raises(ConfigError):
        target.select("../etc", create=True)
    with pytest.raises(StageError, match="no deployment yet"):
        target.select("t")
    stack = target.select("t", create=True)
    assert stack.url == "http://127.0.0.1:8799" and stack.history() == [] and stack.outputs() == {}


def test_config_is_merged_like_pulumi_config(target: LocalTarget) -> None:
    stack = target.select("t", create=True)
    stack.set_config({MODEL_VERSION_KEY: "a", ARTIFACT_DIR_KEY: "x"})
    stack.set_config({MODEL_VERSION_KEY: "b"})
    assert stack.config() == {MODEL_VERSION_KEY: "b", ARTIFACT_DIR_KEY: "x"}


def test_a_bad_artifact_is_a_failed_update_in_the_history(target: LocalTarget, tmp_path: Path) -> None:
    stack = target.select("t", create=True)
    stack.set_config({MODEL_VERSION_KEY: "v", ARTIFACT_DIR_KEY: str(tmp_path / "missing")})
    with pytest.raises(UpdateFailedError, match="not an artifact folder") as caught:
        stack.up("deploy v")
    assert caught.value.update == 1
    [update] = stack.history()
    assert (update.number, update.kind, update.result, update.message) == (1, "update", "failed", "deploy v")
    assert update.model_version == "v" and update.end_time is not None
    stack.annotate(1, "smoke", "fail")
    assert stack.history()[0].verified_bad


def test_a_second_update_at_the_same_time_is_refused(target: LocalTarget) -> None:
    stack = target.select("t", create=True)
    fd = os.open(stack.root / ".update.lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(StackBusyError, match="another update is running"):
            stack.up("second")
    finally:
        os.close(fd)
    assert stack.history() == []


def test_local_dev_can_be_destroyed(tmp_path: Path) -> None:
    from pipelines.destroy import destroy

    target = LocalTarget(PipelineSettings(state_dir=tmp_path / "state"))
    stack = target.select("dev", create=True)
    stack.set_config({MODEL_VERSION_KEY: "v"})
    assert destroy(target, "dev").stack == "dev"
    assert not stack.root.exists()


def test_a_local_stack_that_sets_protect_is_not_destroyed(tmp_path: Path) -> None:
    from pipelines.destroy import destroy
    from pipelines.errors import ConfigError
    from pipelines.targets.base import PROTECT_KEY

    target = LocalTarget(PipelineSettings(state_dir=tmp_path / "state"))
    stack = target.select("prod", create=True)
    assert stack.get_config(PROTECT_KEY) is None
    stack.set_config({PROTECT_KEY: "true"})
    with pytest.raises(ConfigError, match="it sets modelship:protect=true"):
        destroy(target, "prod")
    assert stack.root.exists()
