"""The canary's pieces without a service: the policy file, the checks' statistics, and the keys abort sets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipelines.canary_checks import Arms, error_rate, judge
from pipelines.canary_driver import abort
from pipelines.canary_errors import Requests, count_text
from pipelines.canary_log import ArmLog
from pipelines.canary_policy import POLICY_FILE, load_policy
from pipelines.canary_state import (
    ARTIFACT_KEY,
    DRIVER,
    IMAGE_KEY,
    VERSION_KEY,
    WEIGHT_KEY,
    CanaryRunningError,
    canary_config,
    refuse_if_running,
)
from pipelines.errors import ConfigError
from pipelines.targets.base import ARTIFACT_DIR_KEY, IMAGE_REF_KEY, MODEL_VERSION_KEY
from tests.pipelines.fakes import FakeTarget

POLICY = load_policy()
STABLE = {MODEL_VERSION_KEY: "v1", ARTIFACT_DIR_KEY: "artifacts/v1", IMAGE_REF_KEY: "r/m@sha256:" + "1" * 64}
CANDIDATE = {MODEL_VERSION_KEY: "v2", ARTIFACT_DIR_KEY: "artifacts/v2", IMAGE_REF_KEY: "r/m@sha256:" + "2" * 64}


def test_the_checked_in_policy_loads() -> None:
    assert load_policy(POLICY_FILE).steps.weights == [10, 50]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (("weights = [10, 50]", "weights = [50, 10]"), "weights must increase"),
        (("alpha = 0.01", "alpha = 2"), "errors.alpha"),
        (("max_psi = 0.25", "max_psy = 0.25"), "answers.max_ps"),
        (("[latency]", "[latency"), "not valid TOML"),
    ],
)
def test_a_bad_policy_is_one_config_error(edit: tuple[str, str], says: str, tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text(POLICY_FILE.read_text().replace(*edit, 1))
    with pytest.raises(ConfigError, match=says) as caught:
        load_policy(bad)
    assert "\n" not in str(caught.value)


def _arm(version: str, n: int) -> ArmLog:
    return ArmLog(version, n, 3.0 if n else None, 5.0 if n else None, [1.0] * n, {"x": [1.0] * n} if n else {})


def test_an_empty_arm_is_inconclusive_with_nulls_never_nan() -> None:
    verdict, checks = judge(Arms(_arm("v1", 500), _arm("v2", 0), Requests(500, 0), Requests(0, 0)), POLICY)
    assert verdict == "inconclusive"
    empty = [c for c in checks if c.name != "samples" and c.canary in (None, 0)]
    assert empty and all(c.verdict == "inconclusive" and c.reason for c in empty)
    values = [v for c in checks for v in (c.stable, c.canary, c.statistic, c.p_value) if isinstance(v, float)]
    assert not any(math.isnan(v) for v in values)
    assert "NaN" not in json.dumps([c.__dict__ for c in checks])


def test_errors_fail_on_fishers_test_or_the_cap_and_before_min_samples() -> None:
    arms = Arms(_arm("v1", 1000), _arm("v2", 1000), Requests(1000, 0), Requests(1000, 8))
    assert error_rate(arms, POLICY).verdict == "fail"  # 8 of 1000 against 0: p < 0.01
    close = Arms(arms.stable, arms.canary, Requests(1000, 1), Requests(1000, 2))
    assert error_rate(close, POLICY).verdict == "pass"
    few = Arms(_arm("v1", 5), _arm("v2", 0), Requests(5, 0), Requests(40, 40))  # every canary request a 5xx
    assert judge(few, POLICY)[0] == "fail"


def test_count_text_reads_prediction_routes_only() -> None:
    text = (
        "# TYPE modelship_http_requests counter\n"
        'modelship_http_requests_total{route="/predict",method="POST",status="200"} 90.0\n'
        'modelship_http_requests_total{route="/predict",method="POST",status="503"} 10.0\n'
        'modelship_http_requests_total{route="/v2/models/{name}/infer",method="POST",status="500"} 1.0\n'
        'modelship_http_requests_total{route="/ready",method="GET",status="503"} 7.0\n'
    )
    assert count_text(text) == Requests(101, 11)


def test_abort_clears_the_canary_and_leaves_stable_untouched() -> None:
    stack = FakeTarget().select("prod", create=True)
    stack.set_config({**STABLE, **canary_config(CANDIDATE, 10)})
    stack.up("canary v2 at 10%")
    assert stack.config[VERSION_KEY] == "v2" and stack.config[IMAGE_KEY] == CANDIDATE[IMAGE_REF_KEY]
    done = abort(stack, "fake", "by hand")
    assert done is not None and done.update == 2
    assert {k: stack.config[k] for k in STABLE} == STABLE
    assert (stack.config[WEIGHT_KEY], stack.config[VERSION_KEY], stack.config[ARTIFACT_KEY]) == ("0", "", "")
    assert stack.updates[0].annotations["canary"].startswith("aborted by hand")
    assert abort(stack, "fake", "again") is None  # nothing to abort: no update


def test_a_canary_whose_driver_is_gone_is_an_orphan_in_one_line() -> None:
    stack = FakeTarget().select("prod", create=True)
    stack.set_config({**STABLE, **canary_config(CANDIDATE, 10)})
    stack.up("canary")
    dead = {"host": "elsewhere", "pid": 1, "time": "2020-01-01T00:00:00+00:00"}
    stack.annotate(1, DRIVER, json.dumps(dead))
    with pytest.raises(CanaryRunningError) as caught:
        refuse_if_running(stack, 60, "pulumi", "promote to prod")
    message = str(caught.value)
    assert "orphaned" in message and "canary abort --stack prod --target pulumi" in message and "\n" not in message
