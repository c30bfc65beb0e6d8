"""The canary's analysis against real services: two uvicorn processes (stable, candidate) logging to one real
PostgreSQL, live traffic to both, the driver reading the log and each arm's /metrics. The stack is the in-memory
fake (tests/pipelines/fakes.py): these tests check the judgement and the keys the driver sets, not the routing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from model.train import train
from pipelines.canary import write_canary_record
from pipelines.canary_driver import CanaryDriver
from pipelines.canary_errors import ScrapedArms
from pipelines.canary_policy import load_policy, with_steps
from pipelines.canary_state import ARTIFACT_KEY, IMAGE_KEY, VERSION_KEY, WEIGHT_KEY
from pipelines.deploy import deploy_config
from pipelines.targets.base import DEPLOY_KEYS
from tests.conftest import LiveService
from tests.pipelines.artifacts import relabel_artifact
from tests.pipelines.canary_traffic import traffic
from tests.pipelines.fakes import FakeStack, FakeTarget

STEP_KEYS = {"weight", "verdict", "stable", "canary", "checks"}
CHECK_KEYS = {"name", "stable", "canary", "threshold", "verdict"}


def _stack(stable: Path) -> FakeStack:
    stack = FakeTarget().select("prod", create=True)
    stack.set_config(deploy_config(stable, "local"))
    stack.up("deploy stable")
    return stack


def _driver(stack: FakeStack, pg_url: str, arms: dict[str, LiveService], tmp: Path, **steps: object) -> CanaryDriver:
    policy = with_steps(load_policy(), **{"weights": [10], "seconds": 3, "min_samples": 40, "max_extensions": 1,
                                          "poll_seconds": 0.5, **steps})  # fmt: skip
    urls = {arm: [f"{service.url}/metrics"] for arm, service in arms.items()}
    return CanaryDriver(stack, "local", policy, pg_url, ScrapedArms(urls), tmp / "canary.prom")


def _assert_shape(record: dict[str, object]) -> None:
    assert record["verdict"] in ("promoted", "aborted")
    steps = record["steps"]
    assert isinstance(steps, list) and steps
    for step in steps:
        assert STEP_KEYS <= set(step) and step["verdict"] in ("pass", "fail", "inconclusive")
        for check in step["checks"]:
            assert CHECK_KEYS <= set(check)
    assert "NaN" not in json.dumps(record)


@pytest.fixture
def stable_service(live_service: Callable[..., LiveService], house_artifact: Path) -> LiveService:
    return live_service(house_artifact)


def test_a_healthy_candidate_is_promoted_to_its_exact_keys(
    live_service: Callable[..., LiveService], stable_service: LiveService, house_artifact: Path, pg_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    candidate = relabel_artifact(house_artifact, tmp_path, "same")
    canary = live_service(candidate)
    stack = _stack(house_artifact)
    driver = _driver(stack, pg_url, {"stable": stable_service, "canary": canary}, tmp_path)
    with traffic([stable_service.url, canary.url]), traffic([canary.url], source="loadcheck"):
        result = driver.run(deploy_config(candidate, "local"), "test")
    write_canary_record(tmp_path / "promoted.json", result)
    record = json.loads((tmp_path / "promoted.json").read_text())
    _assert_shape(record)
    assert result.verdict == "promoted", result.summary()
    expected = deploy_config(candidate, "local")
    assert {key: stack.config[key] for key in DEPLOY_KEYS} == expected
    assert (stack.config[WEIGHT_KEY], stack.config[VERSION_KEY], stack.config[ARTIFACT_KEY]) == ("0", "", "")
    assert stack.config[IMAGE_KEY] == ""
    # the step's update ran the canary at 10 % with the candidate's exact values
    step_update = next(u for u in stack.updates if u.number == result.steps[0].update)
    assert step_update.config[WEIGHT_KEY] == "10" and step_update.config[VERSION_KEY] == expected[DEPLOY_KEYS[0]]
    assert stack.updates[0].annotations["canary"].startswith("promoted")
    metrics = (tmp_path / "canary.prom").read_text()
    assert 'modelship_canary_check_threshold{check="latency_p95_ms",limit="max_ratio",stack="prod"} 1.5' in metrics


def test_a_candidate_that_answers_differently_fails_and_is_aborted(
    live_service: Callable[..., LiveService], stable_service: LiveService, house_artifact: Path, pg_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    different = train("house-price", tmp_path, overrides={"alpha": 1e5}).path  # answers shrunk towards the mean
    canary = live_service(different)
    stack = _stack(house_artifact)
    stable_before = {key: stack.config[key] for key in DEPLOY_KEYS}
    driver = _driver(stack, pg_url, {"stable": stable_service, "canary": canary}, tmp_path)
    with traffic([stable_service.url, canary.url]):
        result = driver.run(deploy_config(different, "local"), "test")
    write_canary_record(tmp_path / "aborted.json", result)
    _assert_shape(result.record())
    assert result.verdict == "aborted"
    answers = next(c for c in result.steps[0].checks if c.name == "answers")
    assert answers.verdict == "fail" and answers.statistic is not None and answers.statistic > 0.25
    assert {key: stack.config[key] for key in DEPLOY_KEYS} == stable_before
    assert (stack.config[WEIGHT_KEY], stack.config[VERSION_KEY]) == ("0", "")


def test_an_arm_with_only_synthetic_traffic_is_inconclusive_then_aborted(
    live_service: Callable[..., LiveService], stable_service: LiveService, house_artifact: Path, pg_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    candidate = relabel_artifact(house_artifact, tmp_path, "quiet")
    canary = live_service(candidate)
    stack = _stack(house_artifact)
    driver = _driver(stack, pg_url, {"stable": stable_service, "canary": canary}, tmp_path, seconds=2)
    with traffic([stable_service.url]), traffic([canary.url], source="smoke"):
        result = driver.run(deploy_config(candidate, "local"), "test")
    assert result.verdict == "aborted"
    step = result.steps[0]
    assert step.verdict == "inconclusive" and step.extensions == 1
    assert step.canary["live_requests"] == 0 and step.canary["p95_ms"] is None
    latency = next(c for c in step.checks if c.name == "latency_p95_ms")
    assert latency.verdict == "inconclusive" and latency.canary is None and latency.reason
    _assert_shape(result.record())
