"""Test doubles for the parts that cannot exist here: the Pulumi engine and a Kubernetes cluster.

`summaries_from_json` builds real `pulumi.automation.UpdateSummary` objects from recorded
`pulumi stack history --json` output, exactly as `Stack.history()` does. `StubAutoStack` stands in
for `pulumi.automation.Stack` under the real `PulumiStack` adapter. `FakeTarget` is an in-memory
implementation of the `Target`/`Stack` protocol for driving stage logic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError, ConcurrentUpdateError

from pipelines.errors import StackBusyError, StageError, UpdateFailedError
from pipelines.loadcheck import LoadcheckStageResult
from pipelines.smoke import SmokeResult
from pipelines.targets.base import (
    MODEL_VERSION_KEY,
    OUTPUT_IMAGE_REF,
    OUTPUT_MODEL_VERSION,
    OUTPUT_URL,
    Update,
    UpOutcome,
    update_from_json,
)
from pipelines.verify import Checkers

FIXTURES = Path(__file__).parent / "fixtures"
PULUMI_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def summaries_from_json(entries: list[dict[str, Any]]) -> list[auto.UpdateSummary]:
    """The same construction as pulumi.automation.Stack.history()."""
    return [
        auto.UpdateSummary(
            kind=e["kind"],
            start_time=datetime.strptime(e["startTime"], PULUMI_TIME),
            message=e["message"],
            environment=e["environment"],
            config=e["config"],
            result=e["result"],
            end_time=datetime.strptime(e["endTime"], PULUMI_TIME) if "endTime" in e else None,
            version=e.get("version"),
            deployment=e.get("Deployment"),
            resource_changes=e.get("resourceChanges"),
        )
        for e in entries
    ]


def updates_from_fixture(history: str, tags: str | None = None) -> list[Update]:
    from pipelines.targets.pulumi_target import annotations_from_tags

    notes = annotations_from_tags(fixture(tags)) if tags else {}
    return [update_from_json(e, notes.get(e["version"])) for e in fixture(history)]


def concurrent_update_error(stack: str = "dev") -> ConcurrentUpdateError:
    stderr = f"error: [409] Conflict: Another update is currently in progress.\n(stack {stack})"
    return ConcurrentUpdateError(CommandResult(stdout="", stderr=stderr, code=255))


class StubAutoStack:
    """Just enough of pulumi.automation.Stack for the adapter: records calls, replays a history."""

    def __init__(self, name: str, history: list[dict[str, Any]], tags: dict[str, str] | None = None) -> None:
        self.name = name
        self._history = history
        self.tags = dict(tags or {})
        self.config: dict[str, auto.ConfigValue] = {}
        self.up_error: Exception | None = None
        self.up_calls: list[dict[str, Any]] = []
        self.workspace = self

    def set_all_config(self, config: Mapping[str, auto.ConfigValue], *, path: bool = False) -> None:
        self.config.update(config)

    def get_config(self, key: str, *, path: bool = False) -> auto.ConfigValue:
        if key not in self.config:  # what `pulumi config get` does for a key the stack does not set
            raise command_error(f"error: configuration key '{key}' not found for stack '{self.name}'")
        return self.config[key]

    def up(self, **kwargs: Any) -> Any:
        self.up_calls.append(kwargs)
        if self.up_error is not None:
            raise self.up_error
        if kwargs.get("on_output"):
            kwargs["on_output"]("Updating (dev)")
        summary = summaries_from_json(self._history[:1])[0] if self._history else None
        outputs = {OUTPUT_URL: auto.OutputValue("http://dev.example", False)}
        return auto.UpResult("", "", summary, outputs)  # type: ignore[arg-type]

    def history(self, page_size: int | None = None, page: int | None = None, show_secrets: bool = True) -> Any:
        return summaries_from_json(self._history)

    def outputs(self) -> dict[str, auto.OutputValue]:
        return {OUTPUT_URL: auto.OutputValue("http://dev.example", False)}

    def list_tags(self) -> dict[str, str]:
        return dict(self.tags)

    def set_tag(self, key: str, value: str) -> None:
        self.tags[key] = value


def command_error(stderr: str) -> CommandError:
    return CommandError(CommandResult(stdout="", stderr=stderr, code=1))


# -- in-memory target --------------------------------------------------------------------------


@dataclass
class FakeStack:
    """An in-memory stack: `up` records an update; versions in `fail_up` make it fail."""

    name: str
    config: dict[str, str] = field(default_factory=dict)
    updates: list[Update] = field(default_factory=list)  # newest first, like Pulumi
    live_outputs: dict[str, Any] = field(default_factory=dict)
    fail_up: set[str] = field(default_factory=set)
    busy: bool = False
    destroyed: bool = False
    clock: datetime = field(default_factory=lambda: datetime(2026, 11, 21, 9, 0, tzinfo=UTC))

    def set_config(self, values: Mapping[str, str], *, secret: bool = False) -> None:
        self.config.update(values)

    def get_config(self, key: str) -> str | None:
        return self.config.get(key)

    def up(self, message: str, on_output: Any = None) -> UpOutcome:
        if self.busy:
            raise StackBusyError(f"another update is already running on stack {self.name}")
        number = (self.updates[0].number if self.updates else 0) + 1
        version = self.config.get(MODEL_VERSION_KEY, "")
        result = "failed" if version in self.fail_up else "succeeded"
        self.clock += timedelta(minutes=5)
        self.updates.insert(
            0,
            Update(number, "update", result, self.clock, self.clock + timedelta(minutes=2), message, dict(self.config)),
        )
        if on_output:
            on_output(f"update #{number}: {result}")
        if result == "failed":
            raise UpdateFailedError(f"update #{number} of {self.name} failed", number)
        self.live_outputs = {
            OUTPUT_URL: f"http://{self.name}.fake",
            OUTPUT_MODEL_VERSION: version,
            OUTPUT_IMAGE_REF: self.config.get("modelship:image.digestRef"),
        }
        return UpOutcome(number, dict(self.live_outputs))

    def history(self) -> list[Update]:
        return list(self.updates)

    def outputs(self) -> dict[str, Any]:
        return dict(self.live_outputs)

    def annotate(self, update: int, key: str, value: str) -> None:
        self.updates = [
            Update(
                u.number,
                u.kind,
                u.result,
                u.start_time,
                u.end_time,
                u.message,
                u.config,
                u.environment,
                {**u.annotations, key: value},
            )
            if u.number == update
            else u
            for u in self.updates
        ]

    def destroy(self, on_output: Any = None) -> None:
        self.destroyed = True


class FakeTarget:
    kind = "fake"

    def __init__(self) -> None:
        self.stacks: dict[str, FakeStack] = {}

    def select(self, stack: str, *, create: bool = False) -> FakeStack:
        if stack not in self.stacks:
            if not create:
                raise StageError(f"stack {stack} does not exist")
            self.stacks[stack] = FakeStack(stack)
        return self.stacks[stack]


@dataclass
class FakeChecks:
    """Smoke and load check doubles: a version in `bad_smoke`/`bad_load` fails that check."""

    bad_smoke: set[str] = field(default_factory=set)
    bad_load: set[str] = field(default_factory=set)
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    def smoke(self, url: str, expected: str | None) -> SmokeResult:
        self.calls.append(("smoke", expected))
        return SmokeResult(url, expected, expected, expected not in self.bad_smoke, [])

    def checkers(self, target: FakeTarget) -> Checkers:
        def loadcheck(url: str, profile: str, out_dir: Path, duration: float | None) -> LoadcheckStageResult:
            stack = next(s for s in target.stacks.values() if s.live_outputs.get(OUTPUT_URL) == url)
            version = stack.live_outputs[OUTPUT_MODEL_VERSION]
            self.calls.append(("loadcheck", version))
            passed = version not in self.bad_load
            return LoadcheckStageResult(url, profile, passed, "pass" if passed else "p95 too slow", None, None)

        return Checkers(smoke=self.smoke, loadcheck=loadcheck)
