"""The env the Deployment renders and the settings Pulumi.yaml names are settings the real service reads.

service/settings.py owns the settings (docs/settings.md renders from it); infra writes some of
them per stack. These tests fail when infra or Pulumi.yaml names a variable the service would ignore
(pydantic-settings drops unknown variables silently), or renders a value the service would refuse.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra.mocked_run import ProgramRun
from pipelines.devtools.settings_docs import env_name
from service.settings import Settings
from tests.infra.support import settings_config_map

ROOT = Path(__file__).resolve().parents[2]
SERVICE_ENV = {env_name(name, field): name for name, field in Settings.model_fields.items()}


def test_every_variable_the_deployment_renders_is_a_setting(stack_run: ProgramRun) -> None:
    data: dict[str, str] = settings_config_map(stack_run).inputs["data"]
    assert set(data) <= set(SERVICE_ENV), set(data) - set(SERVICE_ENV)


def test_the_real_settings_accept_the_rendered_values(stack_run: ProgramRun, monkeypatch: pytest.MonkeyPatch) -> None:
    data: dict[str, str] = settings_config_map(stack_run).inputs["data"]
    for key in SERVICE_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # raises when a rendered value is one the service refuses
    for key, value in data.items():
        read = getattr(settings, SERVICE_ENV[key])
        expected = value.lower() == "true" if isinstance(read, bool) else type(read)(value)
        assert read == expected, key  # read as rendered, not replaced by a default


def test_every_setting_pulumi_yaml_names_exists() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    named = {v for spec in declared.values() for v in re.findall(r"\bMODELSHIP_[A-Z0-9_]+\b", spec["description"])}
    assert named, "Pulumi.yaml names the settings it sets (service.logLevel: MODELSHIP_LOG_LEVEL, ...)"
    assert named <= set(SERVICE_ENV), named - set(SERVICE_ENV)
