"""The service settings a stack may set come from one declaration, their field in service/settings.py.

infra/config/ reads `service.<camelCaseName>` for each field marked STACK, checks the values with the
service's own Settings model at preview time, and the ConfigMap carries them (the default when unset).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra import mocked_run
from infra.config import StackConfigError, stack_settings
from tests.infra.support import SECRETS, run_stack, settings_config_map


def config_map(stack: str, overrides: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = settings_config_map(run_stack(stack, overrides)).inputs["data"]
    return data


def test_the_marked_fields_keep_the_keys_the_stacks_and_docs_use() -> None:
    assert (
        stack_settings().items()
        >= {
            "spool_max_bytes": "service.spoolMaxBytes",
            "max_batch": "service.maxBatch",
            "range_policy": "service.rangePolicy",
            "allowed_artifact_sha256": "service.allowedArtifactSha256",
            "log_level": "service.logLevel",
        }.items()
    )  # a new marked field adds its own key


def test_unset_settings_render_the_services_own_defaults() -> None:
    data = config_map("dev", {})
    assert data["MODELSHIP_MAX_BATCH"] == "1000"
    assert data["MODELSHIP_RANGE_POLICY"] == "reject"
    assert data["MODELSHIP_SPOOL_MAX_BYTES"] == str(256 * 1024 * 1024)
    assert data["MODELSHIP_LOG_LEVEL"] == "INFO"


def test_a_stack_value_reaches_the_config_map_as_written() -> None:
    data = config_map("staging", {"service.maxBatch": 50, "service.rangePolicy": "flag", "service.logLevel": "debug"})
    assert (data["MODELSHIP_MAX_BATCH"], data["MODELSHIP_RANGE_POLICY"]) == ("50", "flag")
    assert data["MODELSHIP_LOG_LEVEL"] == "debug"  # the service upper-cases it itself


def test_the_spool_limit_of_the_alerts_is_the_stacks_setting() -> None:
    run = run_stack("staging", {"service.spoolMaxBytes": 8192})
    assert settings_config_map(run).inputs["data"]["MODELSHIP_SPOOL_MAX_BYTES"] == "8192"
    rules = json.dumps(run.one("PrometheusRule").inputs["spec"])
    assert ">= 8192" in rules


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"service.rangePolicy": "maybe"}, "service.rangePolicy: Input should be 'reject' or 'flag', got 'maybe'"),
        ({"service.maxBatch": "lots"}, "service.maxBatch: Input should be a valid integer"),
        ({"service.maxBatch": 0}, "service.maxBatch: Input should be greater than or equal to 1, got '0'"),
        ({"service.spoolMaxBytes": 10}, "service.spoolMaxBytes: Input should be greater than or equal to 4096"),
    ],
)
def test_a_value_the_service_would_refuse_fails_the_preview_naming_the_key(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(StackConfigError, match=re.escape(message)):
        run_stack("dev", overrides)


def test_a_value_set_with_path_is_read_too() -> None:
    """`pulumi config set --path service.maxBatch 20` stores it inside the `service` object, beside the defaults
    the engine wrote there (infra.config.read.raw)."""
    config, secret_keys = mocked_run.load_stack_config("dev", secrets=SECRETS)
    config["modelship:service"] = json.dumps({**json.loads(config["modelship:service"]), "maxBatch": 20})
    data = settings_config_map(mocked_run.run_program("dev", config, secret_keys)).inputs["data"]
    assert data["MODELSHIP_MAX_BATCH"] == "20"


def test_the_deploying_machines_environment_does_not_reach_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHIP_MAX_BATCH", "7")
    config, secret_keys = mocked_run.load_stack_config("dev", secrets=SECRETS)
    data = settings_config_map(mocked_run.run_program("dev", config, secret_keys)).inputs["data"]
    assert data["MODELSHIP_MAX_BATCH"] == "1000"
