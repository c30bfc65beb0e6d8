"""`python -m pipelines status`: stable, canary, shadow, URL and the last update's verdicts, on the fakes, the local
target's files and the Pulumi adapter (over a stub of the Automation API stack)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from pulumi import automation as auto

from infra import contract
from pipelines import cli
from pipelines.canary_state import heartbeat
from pipelines.settings import PipelineSettings, get_settings
from pipelines.status import DRIVER_ANNOTATION, status
from pipelines.targets.base import IMAGE_REF_KEY, MODEL_VERSION_KEY, Target
from pipelines.targets.local import LocalTarget
from pipelines.targets.pulumi_target import PulumiStack, PulumiTarget
from tests.pipelines.fakes import FakeTarget, StubAutoStack, fixture

DIGEST = "registry.example.com/modelship@sha256:" + "ab" * 32
CANARY = {
    contract.full_key(contract.CANARY_MODEL_VERSION): "house-price-222222222222",
    contract.full_key(contract.CANARY_WEIGHT): "10",
}
SHADOW = {
    contract.full_key(contract.SHADOW_MODEL_VERSION): "house-price-333333333333",
    contract.full_key(contract.SHADOW_SAMPLE): "0.25",
}


def as_target(fake: FakeTarget) -> Target:
    # FakeStack.set_config takes no `secret` (the stages under test never set one), so it is not a Stack to mypy.
    return cast(Target, fake)


def test_a_stack_without_canary_or_shadow(fake_target: FakeTarget) -> None:
    stack = fake_target.select("dev", create=True)
    stack.set_config({MODEL_VERSION_KEY: "house-price-111111111111", IMAGE_REF_KEY: DIGEST})
    stack.up("deploy v1")
    stack.annotate(1, "smoke", "pass")
    found = status(as_target(fake_target), "dev")
    assert (found.stable_version, found.stable_image, found.url) == (
        "house-price-111111111111",
        DIGEST,
        "http://dev.fake",
    )
    assert found.canary is None and found.shadow is None and found.notice is None
    assert found.last_update is not None and found.last_update.verdicts == {"smoke": "pass"}
    assert "canary  -" in found.text() and "[smoke=pass]" in found.text()


def test_a_canary_without_a_driver_is_said_in_one_line(fake_target: FakeTarget) -> None:
    stack = fake_target.select("prod", create=True)
    stack.set_config({MODEL_VERSION_KEY: "house-price-111111111111", **CANARY, **SHADOW})
    stack.up("canary at 10%")
    found = status(as_target(fake_target), "prod")
    assert found.canary is not None and (found.canary.weight, found.canary.driven) == (10, False)
    assert found.shadow is not None and found.shadow.sample == 0.25
    assert found.notice == (
        "canary house-price-222222222222 at 10% is running; `python -m pipelines canary abort --stack prod` removes it"
    )
    assert found.text().splitlines()[-1] == found.notice
    assert "house-price-333333333333 on 0.25 of requests" in found.text()


def test_a_fresh_driver_heartbeat_means_the_canary_is_tended(fake_target: FakeTarget) -> None:
    stack = fake_target.select("prod", create=True)
    stack.set_config({MODEL_VERSION_KEY: "house-price-111111111111", **CANARY})
    stack.up("canary at 10%")
    stack.annotate(1, DRIVER_ANNOTATION, heartbeat())  # this process: alive, and fresh
    assert status(as_target(fake_target), "prod").notice is None
    old = json.loads(heartbeat()) | {"time": (datetime.now(UTC) - timedelta(minutes=10)).isoformat()}
    stack.annotate(1, DRIVER_ANNOTATION, json.dumps(old))
    stale = status(as_target(fake_target), "prod")
    assert stale.canary is not None and not stale.canary.driven and stale.notice
    assert DRIVER_ANNOTATION not in (stale.last_update.verdicts if stale.last_update else {})


def test_the_local_target_status_from_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = PipelineSettings(state_dir=tmp_path / "state", local_ports={"dev": 8791})
    stack = LocalTarget(settings).select("dev", create=True)
    config = {MODEL_VERSION_KEY: "house-price-111111111111", **CANARY}
    stack.set_config(config)
    # What a successful local `up` leaves behind, without starting processes.
    number = stack._record(datetime.now(UTC), "succeeded", "canary at 10%", config, {"create": 2})
    stack._write("outputs.json", stack._outputs_for(config))
    stack.annotate(number, "smoke", "pass")
    found = status(LocalTarget(settings), "dev")
    assert found.url == "http://127.0.0.1:8791" and found.target == "local"
    assert found.canary is not None and found.canary.model_version == "house-price-222222222222"
    assert found.notice is not None and "--stack dev" in found.notice

    monkeypatch.setenv("MODELSHIP_PIPELINE_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("MODELSHIP_PIPELINE_LOCAL_PORTS", '{"dev": 8791}')
    get_settings.cache_clear()
    try:
        assert cli.main(["status", "--stack", "dev", "--json"]) == 0
    finally:
        get_settings.cache_clear()
    printed = json.loads(capsys.readouterr().out)
    assert printed["canary"] == {
        "model_version": "house-price-222222222222",
        "weight": 10,
        "router": "pods",
        "driven": False,
    }
    assert printed["last_update"]["verdicts"] == {"smoke": "pass"}


class _StubTarget(PulumiTarget):
    def __init__(self, stub: StubAutoStack) -> None:
        super().__init__(Path("."))
        self.stub = stub

    def select(self, stack: str, *, create: bool = False) -> PulumiStack:
        return PulumiStack(self.stub)  # type: ignore[arg-type]


def test_the_pulumi_target_status_from_config_outputs_history_and_tags() -> None:
    stub = StubAutoStack("dev", fixture("history_dev.json"), fixture("tags_dev.json"))
    stub.set_all_config(
        {k: auto.ConfigValue(v) for k, v in {MODEL_VERSION_KEY: "house-price-0d4c1e9a7b22", **CANARY}.items()}
    )
    found = status(_StubTarget(stub), "dev")
    assert found.target == "pulumi" and found.url == "http://dev.example"
    assert found.stable_version == "house-price-0d4c1e9a7b22"
    assert found.last_update is not None and found.last_update.number == 7
    assert found.last_update.verdicts == {"smoke": "pass", "loadcheck": "pass"}
    assert found.canary is not None and found.notice is not None
