"""All service settings, from environment variables (prefix MODELSHIP_, except DATABASE_URL and PORT)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.config import JsonDict
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.run import SHUTDOWN_GRACE_S

# A stack may set the fields marked STACK as `service.<camelCaseName>` (infra/config/settings_bridge.py reads them,
# checks them with this model and renders them into the Deployment's ConfigMap), so a new one is declared here only.
STACK: JsonDict = {"stack": True}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELSHIP_", extra="ignore", frozen=True, populate_by_name=True)

    model_dir: Path = Field(Path("/app/model"), description="artifact folder (manifest.json + model.joblib)")
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "MODELSHIP_DATABASE_URL"),
        description=(
            "Postgres URL of the prediction log. Required: unset, the service exits with one line saying so; "
            "`make up` starts an embedded PostgreSQL and sets it"
        ),
    )
    data_dir: Path = Field(
        Path(".modelship"), description="embedded PostgreSQL data of `make up` (pg/) and default spool"
    )
    spool_dir: Path | None = Field(
        None, description="fsync'd spool used while Postgres is unreachable (default `<data_dir>/spool`)"
    )
    spool_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=4096,
        description="beyond it, `/predict` answers 503 with `Retry-After` and `/ready` turns unready",
        json_schema_extra=STACK,
    )
    max_batch: int = Field(1000, ge=1, le=100_000, description="most instances per request", json_schema_extra=STACK)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="larger bodies get 413")
    range_policy: Literal["reject", "flag"] = Field(
        "reject",
        description="out-of-range values: `reject` (422) or `flag` (200 with `warnings`)",
        json_schema_extra=STACK,
    )
    db_write_timeout_s: float = Field(2.0, gt=0, description="a log write slower than this goes to the spool")
    db_connect_timeout_s: float = Field(3.0, gt=0, description="connection timeout")
    db_retry_interval_s: float = Field(1.0, gt=0, description="how often a down Postgres is retried")
    log_writers: int = Field(2, ge=1, le=16, description="group commits in flight at once")
    log_batch_max: int = Field(2000, ge=1, description="most records per group commit")
    shutdown_grace_s: float = Field(
        float(SHUTDOWN_GRACE_S),
        gt=0,
        description="time allowed to flush at shutdown (matches uvicorn `--timeout-graceful-shutdown`)",
    )
    request_timeout_s: float = Field(10.0, gt=0, description="a request waiting longer for durability gets 503")
    api_keys_file: Path | None = Field(None, description="API keys with scopes (see Security); unset disables auth")
    allowed_artifact_sha256: str = Field(
        "",
        description="comma-separated allow-list of `model.joblib` digests (a stack's default: the digest it serves)",
        json_schema_extra=STACK,
    )
    access_log: bool = Field(True, description="one JSON line per request on stdout")
    batch_wait_ms: float = Field(
        0.0, ge=0, le=50, description="extra wait to grow micro-batches of model calls (0: same loop turn)"
    )
    engine: Literal["auto", "sklearn"] = Field(
        "auto",
        description=(
            "`auto`: a native engine verified against scikit-learn at load (forest, scaler + linear); "
            "`sklearn`: always scikit-learn"
        ),
    )
    log_level: str = Field("INFO", description="level of the JSON logs on stderr", json_schema_extra=STACK)
    # Live quality (service/quality.py): the task that exports modelship_live_quality. The alert
    # ModelshipLiveQualityDegraded and `python -m pipelines quality` read these defaults: not stack settings.
    quality_interval_s: float = Field(60.0, gt=0, description="how often live quality is recomputed from the log")
    quality_window_s: float = Field(
        3600.0, gt=0, description="live quality covers the live predictions of this many seconds (labelled ones)"
    )
    quality_tolerance: float = Field(
        0.1, ge=0, description="degraded: the primary metric is worse than held-out by more than this (relative)"
    )
    quality_min_labels: int = Field(
        100, ge=1, description="fewer labels than this in the window never count as degraded"
    )
    # The shadow (docs/shadow.md): a challenger scoring sampled copies after the primary answered, never in its way.
    shadow_model_dir: Path | None = Field(
        None, description="challenger artifact folder; unset (or a sample of 0) runs no shadow"
    )
    shadow_sample: float = Field(0.0, ge=0, le=1, description="fraction of requests copied to the challenger")
    shadow_allowed_artifact_sha256: str = Field(
        "", description="comma-separated allow-list of the challenger's `model.joblib` digests"
    )
    shadow_sources: str = Field("live", description="comma-separated request sources the shadow copies")
    shadow_queue_max: int = Field(
        1000, ge=1, description="copies waiting for the challenger; beyond it a copy is dropped and counted"
    )
    shadow_cpu_share: float = Field(
        0.1, gt=0, le=1, description="most of the event loop's time the challenger's scoring may take"
    )
    shadow_test_slowdown: float = Field(
        1.0, ge=1, description="test only: the challenger's scoring blocks this many times as long"
    )
    shadow_test_fail: bool = Field(False, description="test only: the challenger raises on every batch")

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @property
    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or self.data_dir / "spool"

    @property
    def allowed_digests(self) -> frozenset[str]:
        return frozenset(d.strip().lower() for d in self.allowed_artifact_sha256.split(",") if d.strip())

    @property
    def shadow_digests(self) -> frozenset[str]:
        return frozenset(d.strip().lower() for d in self.shadow_allowed_artifact_sha256.split(",") if d.strip())

    @property
    def shadow_source_set(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.shadow_sources.split(",") if s.strip())
