"""The seam between stage logic and the place a model is deployed.

Stages only see `Target.select(stack) -> Stack` and the handful of `Stack` methods below, the same
verbs as the Pulumi Automation API (set config, up, history, outputs). `Update` is a typed view of
one entry of `pulumi stack history --json`; the local target writes its history in that very JSON
shape, so one parser serves both and the recorded Pulumi fixtures in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from infra import contract

# Stack config keys and outputs: infra/contract.py owns the names (Pulumi.yaml declares the keys, infra/config/
# reads them); tests/rehearsal/test_contract.py checks all three sides.
PROJECT = contract.PROJECT
MODEL_VERSION_KEY = contract.full_key(contract.MODEL_VERSION)
ARTIFACT_DIR_KEY = contract.full_key(contract.ARTIFACT_DIR)  # relative to the repo root (the build context)
IMAGE_REF_KEY = contract.full_key(contract.IMAGE_DIGEST_REF)  # set: infra deploys this digest and builds nothing
API_KEYS_KEY = contract.full_key(contract.API_KEYS)  # secret: set from the environment, never re-applied
DEPLOY_KEYS = (MODEL_VERSION_KEY, ARTIFACT_DIR_KEY, IMAGE_REF_KEY)
CANARY_MODEL_VERSION_KEY = contract.full_key(contract.CANARY_MODEL_VERSION)
CANARY_ARTIFACT_DIR_KEY = contract.full_key(contract.CANARY_ARTIFACT_DIR)
CANARY_IMAGE_REF_KEY = contract.full_key(contract.CANARY_IMAGE_DIGEST_REF)
CANARY_WEIGHT_KEY = contract.full_key(contract.CANARY_WEIGHT)
PROTECT_KEY = contract.full_key(contract.PROTECT)  # "true": infra Pulumi-protects the Namespace and Postgres Cluster

OUTPUT_URL = contract.OUTPUT_URL
OUTPUT_MODEL_VERSION = contract.OUTPUT_MODEL_VERSION
OUTPUT_IMAGE_REF = contract.OUTPUT_IMAGE_REF
OUTPUT_EXTERNAL_ADDRESS = contract.OUTPUT_EXTERNAL_ADDRESS
OUTPUT_NAMESPACE = contract.OUTPUT_NAMESPACE
OUTPUT_CANARY_MODEL_VERSION = contract.OUTPUT_CANARY_MODEL_VERSION
OUTPUT_CANARY_IMAGE_REF = contract.OUTPUT_CANARY_IMAGE_REF
OUTPUT_CANARY_WEIGHT = contract.OUTPUT_CANARY_WEIGHT

# Verdicts stages attach to an update after it ran (see Stack.annotate).
SMOKE = "smoke"
LOADCHECK = "loadcheck"
PASS, FAIL = "pass", "fail"

# What a secret config value reads as in a history shown without secrets (Pulumi's own sentinel).
HIDDEN_VALUE = "[secret]"

# `pulumi stack history --json` writes times in this format (UTC, "Z").
HISTORY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

OnOutput = Callable[[str], None]


@dataclass(frozen=True)
class Update:
    """One entry of a stack's history (a Pulumi UpdateSummary), newest first in `Stack.history()`."""

    number: int
    kind: str
    result: str
    start_time: datetime
    end_time: datetime | None
    message: str
    config: Mapping[str, str]
    environment: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def model_version(self) -> str | None:
        return self.config.get(MODEL_VERSION_KEY)

    @property
    def image_ref(self) -> str | None:
        return self.config.get(IMAGE_REF_KEY)

    @property
    def artifact_dir(self) -> str | None:
        return self.config.get(ARTIFACT_DIR_KEY)

    @property
    def succeeded(self) -> bool:
        return self.kind == "update" and self.result == "succeeded"

    @property
    def verified_bad(self) -> bool:
        """A post-deploy check (smoke or load check) failed on this update."""
        return FAIL in (self.annotations.get(SMOKE), self.annotations.get(LOADCHECK))

    def deploy_config(self) -> dict[str, str]:
        """The config an update deployed, restricted to the keys a rollback or promotion re-applies."""
        return {key: self.config[key] for key in DEPLOY_KEYS if key in self.config}


@dataclass(frozen=True)
class UpOutcome:
    update: int | None
    outputs: dict[str, Any]


class Stack(Protocol):
    """A selected stack. `up` raises StackBusyError or UpdateFailedError instead of returning failure."""

    @property
    def name(self) -> str: ...

    def set_config(self, values: Mapping[str, str], *, secret: bool = False) -> None:
        """Set flat config values; `secret=True` stores them encrypted and hides them in history."""

    def get_config(self, key: str) -> str | None:
        """The stack's own value of a config key (`pulumi config get`); None when the stack does not set it."""

    def up(self, message: str, on_output: OnOutput | None = None) -> UpOutcome: ...

    def history(self) -> list[Update]: ...

    def outputs(self) -> dict[str, Any]: ...

    def annotate(self, update: int, key: str, value: str) -> None:
        """Attach a verdict (e.g. loadcheck=pass) to an update, shown by `history`."""

    def destroy(self, on_output: OnOutput | None = None) -> None:
        """Tear the stack down and forget it (ephemeral PR stacks)."""


class Target(Protocol):
    kind: str

    def select(self, stack: str, *, create: bool = False) -> Stack: ...


def _parse_time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    return datetime.strptime(raw, HISTORY_TIME_FORMAT).replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(HISTORY_TIME_FORMAT)


def update_from_json(entry: Mapping[str, Any], annotations: Mapping[str, str] | None = None) -> Update:
    """Parse one entry of `pulumi stack history --json` (camelCase, config as {key: {value, secret}})."""
    config = {
        key: HIDDEN_VALUE if value.get("secret") and "value" not in value else str(value.get("value", ""))
        for key, value in entry.get("config", {}).items()
    }
    start = _parse_time(entry["startTime"])
    if start is None:
        raise ValueError(f"history entry {entry.get('version')} has no startTime")
    return Update(
        number=int(entry.get("version", 0)),
        kind=entry["kind"],
        result=entry["result"],
        start_time=start,
        end_time=_parse_time(entry.get("endTime")),
        message=entry.get("message", ""),
        config=config,
        environment=dict(entry.get("environment", {})),
        annotations=dict(annotations or {}),
    )


def _config_entry(value: str) -> dict[str, Any]:
    """Pulumi's shape: {"value": v, "secret": false}, or {"secret": true} alone for a hidden secret."""
    masked = value == HIDDEN_VALUE
    return {"secret": masked} if masked else {"value": value, "secret": masked}


def update_to_json(update: Update) -> dict[str, Any]:
    """The inverse of update_from_json (annotations are stored apart, as Pulumi has no field for them)."""
    config = {key: _config_entry(value) for key, value in update.config.items()}
    entry: dict[str, Any] = {
        "version": update.number,
        "kind": update.kind,
        "startTime": format_time(update.start_time),
        "message": update.message,
        "environment": dict(update.environment),
        "config": config,
        "result": update.result,
    }
    if update.end_time is not None:
        entry["endTime"] = format_time(update.end_time)
    return entry


def reachable_url(outputs: Mapping[str, Any]) -> str | None:
    """Where a client outside the cluster reaches the service: the load balancer address when there is
    one, else `serviceUrl` (in-cluster DNS: fine for a runner inside the cluster, and for the local target)."""
    external = str(outputs.get(OUTPUT_EXTERNAL_ADDRESS) or "")
    if external:
        return external if "://" in external else f"http://{external}"
    url = outputs.get(OUTPUT_URL)
    return str(url) if url else None


def current_update(history: list[Update]) -> Update | None:
    """The newest `update` in a history (any result): what the stack last tried to deploy."""
    return next((u for u in history if u.kind == "update"), None)


def deployed_update(history: list[Update]) -> Update | None:
    """The newest successful update: the config the stack runs now (a failed `up` changes nothing)."""
    return next((u for u in history if u.succeeded), None)
