"""Run the Pulumi program under mocks once per stack (and per variant) for the whole session.

No Pulumi CLI, engine or cluster: `infra.mocked_run` sets Pulumi mocks *before* it runs infra/__main__.py
fresh (runpy) with the stack's config, and records every resource registration and stack export.
Secret config keys get recognisable sentinel values (tests/infra/support.py), so a leak is a string search.
"""

from __future__ import annotations

import pytest

from infra.mocked_run import ProgramRun
from tests.infra.support import GPU_ON, STACKS, run_stack


@pytest.fixture(scope="session", params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    return run_stack(request.param)


@pytest.fixture(scope="session")
def gpu_run() -> ProgramRun:
    return run_stack("prod", GPU_ON)
