"""How the service runs: the one uvicorn command line, its port and its shutdown grace period.

The image's CMD is this command (tests/service/test_run.py parses the Dockerfile and compares), the dev
server (`make up`) and the local target run it, the service's `shutdown_grace_s` defaults to the same
grace, and infra derives the pod's terminationGracePeriodSeconds from it. Import-light on purpose:
infra and the pipelines import it without loading FastAPI.
"""

from __future__ import annotations

import sys

APP = "service.app:create_app"
PORT = 8000
# uvicorn's --timeout-graceful-shutdown: in-flight requests finish and the prediction log flushes within it.
SHUTDOWN_GRACE_S = 20
# The container's network namespace is the boundary; the pod's port is the only way in.
IMAGE_HOST = "0.0.0.0"  # noqa: S104  # nosec B104

# The command without where to listen (tests and benchmarks add --host/--port, as the image does).
UVICORN = ["uvicorn", APP, "--factory", "--no-access-log", "--timeout-graceful-shutdown", str(SHUTDOWN_GRACE_S)]


def command(host: str = IMAGE_HOST, port: int | str = PORT) -> list[str]:
    """uvicorn's argv in the Dockerfile's order: the app, where to listen, then the rest."""
    return [*UVICORN[:3], "--host", host, "--port", str(port), *UVICORN[3:]]


def python_command(host: str, port: int | str) -> list[str]:
    """The same command through this interpreter (`python -m uvicorn ...`), as the dev server runs it."""
    return [sys.executable, "-m", *command(host, port)]
