"""Pulumi.yaml, the stack files, the Dockerfile and docker-compose.yml agree with the program and the contract."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import contract
from infra.components.workload import SPOOL_DIR
from infra.config import SECRET_KEYS, stack_settings
from infra.config.settings_bridge import default, env_var
from pipelines.devtools.settings_docs import declared_with_stack_settings
from tests.infra.support import STACKS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
DECLARED: dict[str, dict[str, Any]] = PROJECT["config"]
PULUMI_TYPES = {"string": str, "integer": int, "boolean": bool}
# service.maxBatch, ...: read through the fields service/settings.py marks STACK, not declared in Pulumi.yaml
STACK_SETTING_KEYS = set(stack_settings().values())


def reads_of_the_program() -> dict[str, str]:
    """{key: reader} of every `read.string/integer/boolean/secret(c, <key>)` in the modules of infra/config/; a key
    may be a literal or a name of infra/contract.py (the names the pipelines share)."""
    source = "\n".join(p.read_text() for p in sorted((ROOT / "infra" / "config").glob("*.py")))
    pattern = r"\bread\.(string|integer|boolean|secret)\((?:c|config), (?:\"([^\"]+)\"|contract\.([A-Z_]+))\)"
    found = re.findall(pattern, source)
    return {literal or getattr(contract, name): reader for reader, literal, name in found}


def keys_read_by_the_program() -> set[str]:
    return set(reads_of_the_program())


def stack_config(stack: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return config


def test_project_is_a_python_program_in_infra() -> None:
    assert PROJECT["name"] == "modelship"
    assert PROJECT["main"] == "infra/"
    assert PROJECT["runtime"]["name"] == "python"
    assert PROJECT["runtime"]["options"]["virtualenv"] == ".venv"


def test_every_config_key_is_declared_with_type_default_and_description() -> None:
    for key, spec in DECLARED.items():
        assert set(spec) == {"type", "default", "description"}, key
        assert isinstance(spec["default"], PULUMI_TYPES[spec["type"]]), key
        assert spec["description"].strip(), key


def test_the_program_reads_exactly_the_declared_keys() -> None:
    assert keys_read_by_the_program() == set(DECLARED)


def test_stack_settings_are_read_only_generically_and_declared_only_in_settings() -> None:
    assert STACK_SETTING_KEYS, "service/settings.py marks the settings a stack may set"
    assert STACK_SETTING_KEYS.isdisjoint(DECLARED), "a second declaration would be a second default"
    assert STACK_SETTING_KEYS.isdisjoint(keys_read_by_the_program()), "read twice, checked twice"


def test_secret_keys_are_read_as_secrets_and_documented_as_such() -> None:
    reads = reads_of_the_program()
    for key in SECRET_KEYS:
        assert reads[key] == "secret", key
        assert DECLARED[key]["description"].startswith("(secret)")
        assert DECLARED[key]["default"] == ""


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_declared_keys_and_secrets_only_encrypted(stack: str) -> None:
    for full_key, value in stack_config(stack).items():
        namespace, key = full_key.split(":", 1)
        assert namespace == "modelship", full_key
        assert key in DECLARED or key in STACK_SETTING_KEYS, f"{full_key} is not declared in Pulumi.yaml"
        if key in STACK_SETTING_KEYS:
            continue  # the service's Settings check it when the program runs (tests/infra/test_stack_settings.py)
        if key in SECRET_KEYS:
            assert isinstance(value, dict) and set(value) == {"secure"}, f"{full_key} must be a secure: value"
        else:
            assert isinstance(value, PULUMI_TYPES[DECLARED[key]["type"]]), full_key


def test_the_environment_table_of_issue_3() -> None:
    table = {
        "dev": (1, 1, 3, 1, None, False),
        "staging": (2, 2, 6, 1, None, True),
        "prod": (3, 3, 20, 3, 2, True),
    }
    for stack, (replicas, hpa_min, hpa_max, pg, pdb, auth) in table.items():
        c = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()}
        got = (
            c["service.replicas"],
            c["hpa.minReplicas"],
            c["hpa.maxReplicas"],
            c["db.instances"],
            c.get("pdb.minAvailable"),
            c["auth.required"],
        )
        assert got == (replicas, hpa_min, hpa_max, pg, pdb, auth), stack
        assert c["gpu.enabled"] is False


def _doc_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) or value == "" else str(value)


def test_the_deploy_guide_lists_every_key() -> None:
    """Each row of docs/settings.md's config table says what Pulumi.yaml and the stack files say, in their order."""
    page = (ROOT / "docs" / "settings.md").read_text()
    guide = page[page.index("## Stack config keys") :]
    guide = guide[: guide.index("\n## ", 3)] if "\n## " in guide[3:] else guide  # up to the next section
    rows = {}
    for line in guide.splitlines():
        if match := re.match(r"^\| `([^`]+)` \|", line):
            rows[match.group(1)] = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    listed = declared_with_stack_settings(DECLARED)
    assert list(rows) == list(listed)
    assert set(listed) == set(DECLARED) | STACK_SETTING_KEYS
    stacks = [{k.split(":", 1)[1]: v for k, v in stack_config(s).items()} for s in STACKS]
    for key, spec in listed.items():
        per_stack = [f"**{_doc_value(c[key])}**" if key in c else "·" for c in stacks]
        expected = [f"`{key}`", spec["type"], f"`{_doc_value(spec['default'])}`", *per_stack, spec["description"]]
        assert rows[key] == expected, key


# --- Dockerfile ------------------------------------------------------------------------------------


DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_dockerfile_cmd_is_the_contract() -> None:
    cmd = re.findall(r"^CMD (.*)$", DOCKERFILE, re.M)
    assert [json.loads(c) for c in cmd] == [
        [
            "uvicorn",
            "service.app:create_app",
            "--factory",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "20",
        ]
    ]


def test_dockerfile_runtime_contract() -> None:
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${PYTHON_IMAGE}"] * 3 + ["${BASE_IMAGE}"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$", DOCKERFILE, re.M)
    assert "ARG BASE_IMAGE=${PYTHON_IMAGE}" in DOCKERFILE
    assert not DOCKERFILE.startswith("# syntax=")
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)
    # The Dockerfile cannot import them: the service's model_dir default and the pod's spool mount, as text.
    assert f"{env_var('model_dir')}={default('model_dir')} " in DOCKERFILE
    assert f"{env_var('spool_dir')}={SPOOL_DIR} " in DOCKERFILE
    assert re.search(rf"^COPY \$\{{MODEL_DIR\}}/ /out{re.escape(default('model_dir'))}/$", DOCKERFILE, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", DOCKERFILE, re.M)
    assert healthcheck and "urllib.request" in healthcheck.group(1)
    assert "http://127.0.0.1:8000/health" in healthcheck.group(1)
    for label in (
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "dev.modelship.model.version",
        "org.opencontainers.image.created",
        "org.opencontainers.image.source",
    ):
        assert label in DOCKERFILE
    assert "[dev]" not in DOCKERFILE.replace("the [dev] extras never", "")


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"
    assert {"!pyproject.toml", "!service/", "!model/", "!artifacts/"} <= set(lines)


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_the_service_against_postgres_16() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    postgres, service = compose["services"]["postgres"], compose["services"]["modelship"]
    assert postgres["image"] == "${POSTGRES_IMAGE:-postgres:16}"
    assert "healthcheck" in postgres and "healthcheck" in service
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "@postgres:5432/" in service["environment"]["DATABASE_URL"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["read_only"] is True
    assert service["user"] == "10001:10001"
