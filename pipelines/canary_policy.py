"""The canary policy (pipelines/canary_policy.toml): steps, tests, alphas and thresholds, loaded and validated.

One typed place for every number the canary driver judges by; the TOML file says why each value is what it is.
A bad file is a `ConfigError`: one line naming the key and what it takes, exit 2, before anything is deployed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.errors import ConfigError

POLICY_FILE = Path(__file__).with_name("canary_policy.toml")

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Steps(_Section):
    weights: list[Annotated[int, Field(ge=1, le=99)]] = Field(min_length=1)
    seconds: Positive
    max_extensions: Annotated[int, Field(ge=0)]
    min_samples: Annotated[int, Field(ge=2)]
    poll_seconds: Positive
    heartbeat_stale_seconds: Positive

    @field_validator("weights")
    @classmethod
    def _increasing(cls, weights: list[int]) -> list[int]:
        if weights != sorted(set(weights)):
            raise ValueError("weights must increase, each once (e.g. [10, 50])")
        return weights


class Errors(_Section):
    alpha: Probability
    max_difference: Annotated[float, Field(ge=0.0, le=1.0)]


class Latency(_Section):
    max_p95_ratio: Annotated[float, Field(ge=1.0)]
    max_p99_ratio: Annotated[float, Field(ge=1.0)]
    min_difference_ms: Annotated[float, Field(ge=0.0)]


class Answers(_Section):
    alpha: Probability
    max_psi: Positive
    bins: Annotated[int, Field(ge=2, le=100)]


class Inputs(_Section):
    max_psi: Positive
    bins: Annotated[int, Field(ge=2, le=100)]


class CanaryPolicy(_Section):
    steps: Steps
    errors: Errors
    latency: Latency
    answers: Answers
    inputs: Inputs


def _where(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    return f"{key}: {first['msg']}"


def load_policy(path: Path | None = None) -> CanaryPolicy:
    """Read and validate a canary policy (default: pipelines/canary_policy.toml).

    Raises:
        ConfigError: the file is missing, not TOML, or a value is missing, unknown or out of range.
    """
    path = path or POLICY_FILE
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read canary policy {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"canary policy {path} is not valid TOML: {exc}") from None
    try:
        return CanaryPolicy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"canary policy {path}: {_where(exc)} (see pipelines/canary_policy.toml)") from None


def with_steps(policy: CanaryPolicy, **overrides: object) -> CanaryPolicy:
    """POLICY with some [steps] values replaced (the command line's --steps, --step-seconds, --min-samples)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return policy
    data = policy.model_dump()
    data["steps"].update(given)
    try:
        return CanaryPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"--{str(first['loc'][1]).replace('_', '-')}: {first['msg']}") from None
