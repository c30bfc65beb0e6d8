"""Guards on the seam between pipelines/ and infra/: the config the pipelines set is what infra declares and
reads, and the real program, fed the config the way the engine merges it, deploys what the pipelines asked for.

The original bug: the pipelines set `modelship:model.version`, infra read `modelVersion`, and both sides'
tests passed. Undeclared keys are accepted silently by the engine, so only a test across the seam sees it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import config_merge as merge
from infra import contract, mocked_run
from pipelines.deploy import deploy_config
from pipelines.targets.base import API_KEYS_KEY, DEPLOY_KEYS, OUTPUT_IMAGE_REF, OUTPUT_MODEL_VERSION
from tests.infra.test_project_files import reads_of_the_program

ROOT = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
DECLARED: dict[str, dict[str, Any]] = PROJECT["config"]
IMAGE = "registry.example.com/modelship@sha256:" + "cd" * 32
_CONFIG_FLAG = re.compile(r"--config[ =]([A-Za-z][\w.]*)=(\S+)")


def short(key: str) -> str:
    namespace, name = key.split(":", 1)
    assert namespace == contract.PROJECT, key
    return name


def workflow_config() -> dict[str, str]:
    """Every `--config KEY=VALUE` a workflow passes to the pipelines."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        found.update(dict(_CONFIG_FLAG.findall(path.read_text())))
    return found


def pipeline_keys() -> dict[str, str]:
    """{short key: an example value} of everything the pipelines set on a stack."""
    keys = {short(k): "x" for k in (*DEPLOY_KEYS, API_KEYS_KEY)}
    return {**keys, **workflow_config()}


@pytest.mark.parametrize("key", sorted(pipeline_keys()))
def test_every_key_the_pipelines_set_is_declared_typed_and_read(key: str) -> None:
    assert key in DECLARED, f"the pipelines set {key}, which Pulumi.yaml does not declare (the engine would ignore it)"
    value = pipeline_keys()[key]
    if key in {short(k) for k in (*DEPLOY_KEYS, API_KEYS_KEY)}:
        assert DECLARED[key]["type"] == "string", key  # the pipelines set text
    else:
        assert merge.valid_type(DECLARED[key]["type"], value), f"{key}={value} is not a {DECLARED[key]['type']}"
    assert key in reads_of_the_program(), f"infra/config/ never reads {key}"


def test_the_api_keys_are_read_as_a_secret() -> None:
    assert reads_of_the_program()[contract.API_KEYS] == "secret"


def engine_config(stack: str, pipeline_values: dict[str, str], secrets: dict[str, str]) -> mocked_run.ProgramRun:
    """Run the real program on the config as the engine merges it: Pulumi.yaml defaults by path, the stack file
    (if any), then the values the pipelines set flat (pkg/workspace/config.go, as infra/config_merge.py ports it)."""
    stack_config = merge.stack_file_config(ROOT, contract.PROJECT, stack)
    stack_config.update({k: merge.plain(v) for k, v in pipeline_values.items()})
    stack_config.update({k: merge.secret(v) for k, v in secrets.items()})
    values, secret_keys = merge.program_config(merge.merge(PROJECT, stack, stack_config))
    return mocked_run.run_program(stack, values, secret_keys)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "pr-7"])
def test_the_program_deploys_what_the_pipelines_set(stack: str, house_artifact: Path) -> None:
    """dev/prod used to export the stack file's placeholder version; pr-<n> (no stack file) could not deploy."""
    config = deploy_config(house_artifact, "pulumi", IMAGE)
    secrets = {API_KEYS_KEY: "ci predict,read,synthetic k"} if stack in ("staging", "prod") else {}
    if stack == "prod":  # backups are on in prod: the team stores the object store's credentials once
        secrets.update({"modelship:db.backup.accessKeyId": "AKIA", "modelship:db.backup.secretAccessKey": "s"})
    run = engine_config(stack, config, secrets)
    assert run.exports[OUTPUT_MODEL_VERSION].value == house_artifact.name
    assert run.exports[OUTPUT_IMAGE_REF].value == IMAGE
    (deployment,) = [r for r in run.kubernetes_objects() if r.kind == "Deployment"]
    assert mocked_run.masked(deployment.inputs)["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_dotted_defaults_reach_the_program_only_by_path() -> None:
    """The engine writes a dotted key's default into an object, not under the flat name; infra reads both."""
    merged = merge.merge(PROJECT, "pr-7", {})
    assert merge.get(merged, "modelship:service.type", path=False) is None
    assert merge.get(merged, "modelship:service.type", path=True) == {
        "value": "ClusterIP",
        "secret": False,
        "object": False,
    }
