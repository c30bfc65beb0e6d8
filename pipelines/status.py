"""Stage `status`: what a stack runs now, in a few lines: stable, canary, shadow, URL, the last update's verdicts.

Read from the stack's declared state (its config: a canary is `canary.weight` above 0, a shadow
`shadow.sample` above 0; infra/contract.py), its outputs and its history. A canary that no driver tends (no
fresh `canary.driver` heartbeat on the last update) is said so in one line, with the command that removes it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC

from infra import contract
from pipelines import commands
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target
from pipelines.targets.base import (
    IMAGE_REF_KEY,
    MODEL_VERSION_KEY,
    OUTPUT_IMAGE_REF,
    Stack,
    Target,
    Update,
    current_update,
    reachable_url,
)

# The canary driver's heartbeat: an annotation of the update it drives, an ISO-8601 UTC time as the last word
# of its value (e.g. "pid 4242 on runner-1 2025-01-01T12:00:00Z"). Older than this, the driver is gone.
DRIVER_ANNOTATION = "canary.driver"  # pipelines/canary_state.py DRIVER, which writes it


@dataclass(frozen=True)
class CanaryStatus:
    model_version: str
    weight: int  # percent, as declared (the pods router rounds it to whole pods: the `canaryWeight` output)
    router: str
    driven: bool  # a driver's heartbeat is fresh


@dataclass(frozen=True)
class ShadowStatus:
    model_version: str
    sample: float


@dataclass(frozen=True)
class LastUpdate:
    number: int
    result: str
    time: str
    message: str
    verdicts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusResult:
    stack: str
    target: str
    stable_version: str | None
    stable_image: str | None
    url: str | None
    canary: CanaryStatus | None
    shadow: ShadowStatus | None
    last_update: LastUpdate | None
    notice: str | None  # the one line a person must read, if any

    def text(self) -> str:
        lines = [
            f"stack {self.stack} ({self.target})",
            f"  stable  {self.stable_version or '-'}  {self.stable_image or '-'}",
            f"  canary  {_canary_text(self.canary)}",
            f"  shadow  {f'{self.shadow.model_version} on {self.shadow.sample:g} of requests' if self.shadow else '-'}",
            f"  url     {self.url or '-'}",
            f"  last    {_update_text(self.last_update)}",
        ]
        return "\n".join(lines + ([self.notice] if self.notice else []))


def status(target: Target, stack: str) -> StatusResult:
    """What STACK runs now, from its config, outputs and history.

    Args:
        target: where the stack lives.
        stack: the stack name.

    Returns:
        StatusResult; `text()` is what the command prints, `--json` prints it as JSON.
    """
    selected = target.select(stack)
    outputs = selected.outputs()
    last = current_update(selected.history())
    canary = _canary(selected)
    notice = None
    if canary is not None and not canary.driven:
        notice = (
            f"canary {canary.model_version} at {canary.weight}% is running; "
            f"`python -m pipelines canary abort --stack {stack}` removes it"
        )
    return StatusResult(
        stack=stack,
        target=target.kind,
        stable_version=selected.get_config(MODEL_VERSION_KEY),
        stable_image=str(outputs.get(OUTPUT_IMAGE_REF) or selected.get_config(IMAGE_REF_KEY) or "") or None,
        url=reachable_url(outputs),
        canary=canary,
        shadow=_shadow(selected),
        last_update=_last(last),
        notice=notice,
    )


def _number(stack: Stack, key: str) -> float:
    text = stack.get_config(contract.full_key(key)) or "0"
    try:
        return float(text)
    except ValueError:
        return 0.0


def _canary(stack: Stack) -> CanaryStatus | None:
    weight = int(_number(stack, contract.CANARY_WEIGHT))
    if weight <= 0:
        return None
    from pipelines.canary_policy import load_policy
    from pipelines.canary_state import read_state

    # The driver's own rule for a live heartbeat (pipelines/canary_state.py), so status and the driver agree.
    tended = read_state(stack, load_policy().steps.heartbeat_stale_seconds).alive
    return CanaryStatus(
        model_version=stack.get_config(contract.full_key(contract.CANARY_MODEL_VERSION)) or "?",
        weight=weight,
        router=stack.get_config(contract.full_key(contract.CANARY_ROUTER)) or "pods",
        driven=tended,
    )


def _shadow(stack: Stack) -> ShadowStatus | None:
    sample = _number(stack, contract.SHADOW_SAMPLE)
    if sample <= 0:
        return None
    version = stack.get_config(contract.full_key(contract.SHADOW_MODEL_VERSION)) or "?"
    return ShadowStatus(model_version=version, sample=sample)


def _last(update: Update | None) -> LastUpdate | None:
    if update is None:
        return None
    return LastUpdate(
        number=update.number,
        result=update.result,
        time=update.start_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        message=update.message.splitlines()[0] if update.message else "",
        verdicts={k: v for k, v in update.annotations.items() if k != DRIVER_ANNOTATION},
    )


def _canary_text(canary: CanaryStatus | None) -> str:
    if canary is None:
        return "-"
    driver = "driven" if canary.driven else "no driver"
    return f"{canary.model_version} at {canary.weight}% (router {canary.router}; {driver})"


def _update_text(update: LastUpdate | None) -> str:
    if update is None:
        return "(no updates)"
    verdicts = " ".join(f"{k}={v}" for k, v in sorted(update.verdicts.items())) or "no verdicts"
    return f"#{update.number} {update.result} at {update.time} UTC: {update.message} [{verdicts}]"


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    commands.stack_options(parser)
    parser.add_argument("--json", action="store_true", help="print the status as one JSON object")


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = status(get_target(args.target, settings), args.stack)
    commands.out(json.dumps(asdict(result), indent=2) if args.json else result.text())
    return commands.finish(args, "status", result, True)


STAGE = commands.Stage(
    "status", "show what a stack runs now: stable, canary, shadow, last update", _add_arguments, _run
)
