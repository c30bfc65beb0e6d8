"""The Pulumi Automation API behind the `Target`/`Stack` protocol. Thin on purpose: no stage logic here.

It translates Pulumi's exceptions into the pipelines' domain errors and `UpdateSummary` objects into
`Update`s. Verdicts (smoke/loadcheck) are stack tags `modelship:u<N>:<check>`, since an update in
Pulumi's history cannot be edited after the fact.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from pulumi.automation import errors as auto_errors

from infra import contract
from pipelines.errors import StackBusyError, StageError, UnknownStackError, UpdateFailedError
from pipelines.targets.base import OnOutput, Update, UpOutcome

log = logging.getLogger(__name__)

_TAG = re.compile(r"^modelship:u(\d+):([a-z]+)$")

BUSY_HELP = (
    "another update is already running on stack {stack} (a CI job, or a colleague's `pulumi up`). "
    "Pulumi allows one update per stack at a time, so this one was refused and nothing changed. "
    "Wait for it to finish and run this again; `python -m pipelines history --stack {stack} "
    "--target pulumi` shows it. If that update crashed and left the lock behind, run "
    "`pulumi cancel --stack {stack}` first."
)


def update_from_summary(summary: auto.UpdateSummary, annotations: Mapping[str, str] | None = None) -> Update:
    return Update(
        number=summary.version or 0,
        kind=summary.kind,
        result=summary.result,
        start_time=summary.start_time.replace(tzinfo=UTC),
        end_time=summary.end_time.replace(tzinfo=UTC) if summary.end_time else None,
        message=summary.message,
        config={key: str(value.value) for key, value in summary.config.items()},
        environment=dict(summary.environment),
        annotations=dict(annotations or {}),
    )


def annotations_from_tags(tags: Mapping[str, str]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {}
    for key, value in tags.items():
        if match := _TAG.match(key):
            found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return found


class PulumiStack:
    """One selected `pulumi.automation.Stack`. Every `up` runs the CrossGuard packs in `policy_packs`."""

    def __init__(self, stack: auto.Stack, policy_packs: tuple[str, ...] = ()) -> None:
        self._stack = stack
        self._policy_packs = list(policy_packs)

    @property
    def name(self) -> str:
        return str(self._stack.name)

    def set_config(self, values: Mapping[str, str], *, secret: bool = False) -> None:
        # Flat keys (path=False), the form infra/config/ reads first; see infra/contract.py.
        self._stack.set_all_config({k: auto.ConfigValue(value=v, secret=secret) for k, v in values.items()})

    def get_config(self, key: str) -> str | None:
        try:
            return str(self._stack.get_config(key).value)
        except auto_errors.CommandError:
            return None  # `pulumi config get` fails on a key the stack does not set

    def up(self, message: str, on_output: OnOutput | None = None) -> UpOutcome:
        try:
            result = self._stack.up(
                message=message, on_output=on_output, color="never", policy_packs=self._policy_packs or None
            )
        except auto_errors.ConcurrentUpdateError as exc:
            raise StackBusyError(BUSY_HELP.format(stack=self.name)) from exc
        except auto_errors.CommandError as exc:
            raise UpdateFailedError(f"pulumi up on {self.name} failed: {exc}") from exc
        outputs = {key: out.value for key, out in result.outputs.items()}
        return UpOutcome(update=result.summary.version, outputs=outputs)

    def history(self) -> list[Update]:
        annotations = annotations_from_tags(self._tags())
        try:
            summaries = self._stack.history(show_secrets=False)
        except auto_errors.CommandError as exc:
            raise StageError(f"cannot read the history of {self.name}: {exc}") from exc
        return [update_from_summary(s, annotations.get(s.version or 0)) for s in summaries]

    def outputs(self) -> dict[str, Any]:
        try:
            outputs = self._stack.outputs()
        except auto_errors.CommandError as exc:
            raise StageError(f"cannot read the outputs of {self.name}: {exc}") from exc
        return {key: out.value for key, out in outputs.items()}

    def annotate(self, update: int, key: str, value: str) -> None:
        try:
            self._stack.set_tag(f"modelship:u{update}:{key}", value)
        except auto_errors.CommandError as exc:
            # Self-managed backends (file://, s3://) have no stack tags; the verdict stays in the record.
            log.warning("could not tag update %s of %s with %s=%s: %s", update, self.name, key, value, exc)

    def destroy(self, on_output: OnOutput | None = None) -> None:
        try:
            self._stack.destroy(on_output=on_output, color="never")
            self._stack.workspace.remove_stack(self._stack.name)
        except auto_errors.ConcurrentUpdateError as exc:
            raise StackBusyError(BUSY_HELP.format(stack=self.name)) from exc

    def _tags(self) -> dict[str, str]:
        try:
            return dict(self._stack.list_tags())
        except auto_errors.CommandError:
            return {}


class PulumiTarget:
    """Stacks of the Pulumi project in `work_dir` (the folder holding Pulumi.yaml).

    `up` always runs the project's CrossGuard pack (infra/policies), so a mandatory violation fails the
    update before anything changes; pass `policy_pack=None` only where the pack does not exist.
    """

    kind = "pulumi"

    def __init__(self, work_dir: Path, org: str | None = None, policy_pack: Path | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.org = org
        pack = policy_pack if policy_pack is not None else self.work_dir / contract.POLICY_PACK_DIR
        self.policy_packs = (str(pack.absolute()),) if (pack / "PulumiPolicy.yaml").is_file() else ()

    def select(self, stack: str, *, create: bool = False) -> PulumiStack:
        name = f"{self.org}/{stack}" if self.org else stack
        select = auto.create_or_select_stack if create else auto.select_stack
        try:
            return PulumiStack(select(stack_name=name, work_dir=str(self.work_dir)), self.policy_packs)
        except auto_errors.StackNotFoundError as exc:
            raise UnknownStackError(
                f"Pulumi stack {name} does not exist in {self.work_dir}; create it with "
                f"`pulumi stack init {name}` (PR stacks are created by `deploy`)."
            ) from exc
        except FileNotFoundError as exc:
            raise StageError(
                "the Pulumi CLI is not installed (the Automation API drives it): install it from "
                "https://www.pulumi.com/docs/install/ or use --target local"
            ) from exc
        except auto_errors.CommandError as exc:
            raise StageError(f"cannot select Pulumi stack {name} (logged in? PULUMI_ACCESS_TOKEN set?): {exc}") from exc
