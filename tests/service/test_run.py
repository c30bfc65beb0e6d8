"""One run command and one grace period: the image, the dev server, the local target and the pod agree."""

from __future__ import annotations

import ast
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
    """`COPY service/` ships the package whole, so no dev tool may live in it (they are in pipelines/devtools/);
    of model/ it copies exactly the modules service imports, directly or through them, and no training code."""
    lines = re.findall(r"^COPY (?!--from)(.+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    sources = [part for line in lines for part in line.split()[:-1]]
    model_files = {s for s in sources if s.startswith("model/")}
    assert [s for s in sources if s not in model_files] == ["pyproject.toml", "uv.lock", "service/", "${MODEL_DIR}/"]
    assert model_files == {"model/__init__.py", *(f"model/{m}.py" for m in _model_modules_serving_needs())}
    for source in (ROOT / "service").rglob("*.py"):
        text = source.read_text()
        for dev_only in ("pgserver", "embedded_pg", "import pipelines", "from pipelines", "from infra"):
            assert dev_only not in text, f"{source.relative_to(ROOT)} uses {dev_only}: dev tooling in the image"


def _model_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module}
    found |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return {name.split(".")[1] for name in found if name.startswith("model.")}


def _model_modules_serving_needs() -> set[str]:
    """model's modules that service imports, and what those import in turn."""
    needed: set[str] = set()
    pending = set().union(*(_model_modules(p) for p in (ROOT / "service").rglob("*.py")))
    while pending:
        module = pending.pop()
        needed.add(module)
        pending |= _model_modules(ROOT / "model" / f"{module}.py") - needed
    return needed
