"""One run command and one grace period: the image, the dev server, the local target and the pod agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

from infra.components.workload import PRESTOP_SLEEP_S, TERMINATION_GRACE_S
from pipelines.settings import PipelineSettings
from pipelines.targets.local_process import service_command
from service import run
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def image_cmd() -> list[str]:
    """The Dockerfile's exec-form CMD, parsed as Docker does (a JSON array)."""
    found = re.findall(r"^CMD\s+(\[.*\])\s*$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert len(found) == 1, "the Dockerfile needs exactly one exec-form CMD"
    command: list[str] = json.loads(found[0])
    return command


def test_the_image_runs_the_run_command() -> None:
    assert image_cmd() == run.command()


def test_the_local_target_runs_the_same_command_on_loopback() -> None:
    argv = service_command(8123)
    assert argv[1:3] == ["-m", "uvicorn"]
    assert argv[2:] == run.command("127.0.0.1", 8123)


def test_one_grace_period_everywhere() -> None:
    cmd = run.command()
    assert int(cmd[cmd.index("--timeout-graceful-shutdown") + 1]) == run.SHUTDOWN_GRACE_S
    assert Settings(_env_file=None).shutdown_grace_s == run.SHUTDOWN_GRACE_S  # the log's flush budget
    assert PipelineSettings().stop_timeout_s > run.SHUTDOWN_GRACE_S  # the local target never SIGKILLs a drain
    # The pod: preStop sleep, then uvicorn's drain, inside the termination grace period.
    assert TERMINATION_GRACE_S > PRESTOP_SLEEP_S + run.SHUTDOWN_GRACE_S


def test_the_image_copies_only_serving_code() -> None:
    """`COPY service/` ships the package whole, so no dev tool may live in it (they are in pipelines/devtools/)."""
    copies = re.findall(r"^COPY (?!--from)(\S+) ", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert copies == ["pyproject.toml", "model/", "service/", "${MODEL_DIR}/"]
    for source in (ROOT / "service").rglob("*.py"):
        text = source.read_text()
        for dev_only in ("pgserver", "embedded_pg", "import pipelines", "from pipelines", "from infra"):
            assert dev_only not in text, f"{source.relative_to(ROOT)} uses {dev_only}: dev tooling in the image"
