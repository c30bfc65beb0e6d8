"""infra/config_merge.py, the one port of the engine's config merge, as the offline runner uses it.

The port's engine behaviour (missing keys, type checks, flat dotted values) is tested through the stand-in CLI
in tests/rehearsal/test_standin_pulumi.py; these check what infra.mocked_run adds on top of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra import config_merge, mocked_run


def test_the_offline_runner_hands_the_program_the_engines_shape() -> None:
    """Stack values flat, declared defaults by path inside their object, the secrets marked secret."""
    config, secret_keys = mocked_run.load_stack_config("prod")
    stack = yaml.safe_load((mocked_run.REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    assert config["modelship:service.replicas"] == str(stack["modelship:service.replicas"])
    assert json.loads(config["modelship:retention"])["batch"] == "5000"  # a default prod does not set
    assert "modelship:retention.batch" not in config
    assert "modelship:auth.apiKeys" in secret_keys


def test_a_secure_value_needs_a_stand_in_for_it(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.qa.yaml").write_text(yaml.safe_dump({"config": {"modelship:db.url": {"secure": "v1:x"}}}))
    with pytest.raises(config_merge.ConfigMergeError, match="secure"):
        config_merge.stack_file_config(tmp_path, "modelship", "qa")
    given = config_merge.stack_file_config(tmp_path, "modelship", "qa", secure=lambda _f, _k: config_merge.secret("s"))
    assert given == {"modelship:db.url": {"value": "s", "secret": True, "object": False}}


def test_an_override_of_the_wrong_type_is_refused_as_the_engine_would() -> None:
    with pytest.raises(config_merge.ConfigMergeError, match="configuration key 'protect' must be of type 'boolean'"):
        mocked_run.load_stack_config("dev", overrides={"protect": "yes"})
