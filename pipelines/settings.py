"""The pipelines' settings: one pydantic-settings class, reached through `get_settings()`.

Environment variables use the prefix `MODELSHIP_PIPELINE_` (e.g. `MODELSHIP_PIPELINE_STATE_DIR`).
Tests build their own `PipelineSettings(...)` and pass it down instead of editing `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.recipes import DEFAULT_RECIPE
from service.run import SHUTDOWN_GRACE_S
from service.settings import Settings as ServiceSettings

REPO_ROOT = Path(__file__).resolve().parent.parent

# Well-known local ports; other stacks get a derived one (see pipelines.targets.local.local_port).
DEFAULT_LOCAL_PORTS = {"dev": 8101, "staging": 8102, "prod": 8103}


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELSHIP_PIPELINE_", extra="ignore")

    state_dir: Path = Field(
        default=REPO_ROOT / ".modelship",
        description="local stacks live in <state_dir>/stacks/<stack>/ (anchored to the repo, not the cwd)",
    )
    artifacts_dir: Path = Field(default=Path("artifacts"), description="where `train` writes artifacts")
    recipe: str = Field(
        default=DEFAULT_RECIPE,
        description="what `train` and `release` train without --recipe (what the workflows ship)",
    )
    reports_dir: Path = Field(default=Path("reports"), description="loadcheck reports and records")
    local_ports: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_LOCAL_PORTS))
    ready_timeout_s: float = Field(default=60.0, description="how long a local deploy waits for /ready")
    stop_timeout_s: float = Field(
        default=SHUTDOWN_GRACE_S + 5.0, description="graceful stop of a local service (> uvicorn's grace)"
    )
    http_timeout_s: float = Field(default=10.0, description="per-request timeout of smoke checks")
    api_key: SecretStr | None = Field(
        default=None, description="API key smoke sends (Authorization: Bearer) to stacks with auth.required"
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="the stack's API keys file content (`<key-id> <scopes> <secret>` lines); set, every pulumi "
        "`up` first stores it as the secret auth.apiKeys (the deploy job passes the environment's secret)",
    )

    gate_tolerance: float = Field(
        default=0.05, ge=0.0, description="allowed relative regression of the primary metric vs the baseline"
    )
    gate_floors: dict[str, float] = Field(
        default_factory=lambda: {"r2": 0.8, "accuracy": 0.85, "f1_macro": 0.85},
        description="absolute worst acceptable value per metric (a ceiling for lower-is-better metrics)",
    )
    # `python -m pipelines quality` judges as the service's exported figure does: its defaults (service/settings.py).
    quality_tolerance: float = Field(
        default=ServiceSettings.model_fields["quality_tolerance"].default,
        ge=0.0,
        description="`quality` is degraded when live is worse than held-out by more than this (relative; 0.1 = 10%)",
    )
    quality_min_labels: int = Field(
        default=ServiceSettings.model_fields["quality_min_labels"].default,
        ge=1,
        description="`quality` is never degraded on fewer labels than this",
    )
    shadow_min_samples: int = Field(
        default=100, ge=1, description="promote --require-shadow-agreement: fewest instances the shadow compared"
    )
    shadow_rel_tolerance: float = Field(
        default=0.05, ge=0.0, description="a regression's shadow instance disagrees beyond this relative difference"
    )
    serving_sklearn: str | None = Field(
        default=None, description="scikit-learn version of the serving image; default: the pyproject pin"
    )

    pulumi_work_dir: Path = Field(default=REPO_ROOT, description="folder holding Pulumi.yaml")
    pulumi_org: str | None = Field(default=None, description="prefix stacks as <org>/<stack> when set")


@lru_cache(maxsize=1)
def get_settings() -> PipelineSettings:
    return PipelineSettings()
