"""The stand-in engine: run the real program under mocks, check policies, diff against the last state.

The program is the project's `main` (infra/__main__.py), run by infra.mocked_run under `pulumi.runtime` mocks
with the merged config, so every resource it declares is recorded and its exports become the outputs. There
is no provider: a resource "exists" once an update recorded it, and the diff below compares recorded inputs,
nothing like a provider's own diff (that is what a rehearsal cannot show).
"""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.runtime.rpc import is_rpc_secret

from infra import mocked_run
from tests.rehearsal.standin_pulumi.state import StandinError


@dataclass(frozen=True)
class Plan:
    run: mocked_run.ProgramRun
    steps: dict[str, str]  # "type::name" -> create | update | same | delete
    violations: list[str] = field(default_factory=list)

    def changes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.steps.values():
            counts[op] = counts.get(op, 0) + 1
        return counts


def run_program(stack: str, config: dict[str, str], secret_keys: list[str], preview: bool) -> mocked_run.ProgramRun:
    """The real infra program, as the language host would run it (failures become a program error)."""
    try:
        return mocked_run.run_program(stack, config, secret_keys, preview)
    except Exception as exc:  # the program's own error, reported the way the CLI reports one
        raise StandinError(
            f"an unhandled error occurred: Program exited with non-zero exit code: 1\n{type(exc).__name__}: {exc}"
        ) from exc


def unwrapped(value: Any) -> Any:
    """Inputs as CrossGuard hands them to a policy: secrets unwrapped."""
    if is_rpc_secret(value):
        return unwrapped(value["value"])
    if isinstance(value, Mapping):
        return {k: unwrapped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrapped(v) for v in value]
    return value


def digest(resource: mocked_run.Captured) -> str:
    return hashlib.sha256(json.dumps(unwrapped(resource.inputs), sort_keys=True, default=str).encode()).hexdigest()


def plan(run: mocked_run.ProgramRun, previous: list[dict[str, Any]]) -> dict[str, str]:
    before = {f"{r['type']}::{r['name']}": r["digest"] for r in previous}
    steps = {}
    for resource in run.resources:
        if not resource.custom:
            continue
        key = f"{resource.type}::{resource.name}"
        old = before.pop(key, None)
        steps[key] = "create" if old is None else ("same" if old == digest(resource) else "update")
    steps.update({key: "delete" for key in before})
    return steps


def recorded(run: mocked_run.ProgramRun) -> list[dict[str, Any]]:
    return [{"type": r.type, "name": r.name, "digest": digest(r)} for r in run.resources if r.custom]


class _CapturedPack:
    """Takes the place of pulumi_policy.PolicyPack while the pack's __main__ runs: keeps its policies
    instead of serving them to an engine over gRPC (which is what the real analyzer host talks to)."""

    last: _CapturedPack | None = None

    def __init__(self, name: str, policies: list[Any], **_: Any) -> None:
        self.name = name
        self.policies = policies
        _CapturedPack.last = self


def load_policy_pack(folder: Path) -> _CapturedPack:
    """Run a Python CrossGuard pack's entry point (PulumiPolicy.yaml + __main__.py) and keep its policies."""
    import pulumi_policy

    if not (folder / "PulumiPolicy.yaml").is_file() or not (folder / "__main__.py").is_file():
        raise StandinError(f"{folder} is not a Python policy pack (PulumiPolicy.yaml and __main__.py)")
    real = pulumi_policy.PolicyPack
    pulumi_policy.PolicyPack = _CapturedPack  # type: ignore[misc,assignment]
    saved_path = list(sys.path)
    try:
        sys.path.insert(0, str(folder))
        runpy.run_path(str(folder / "__main__.py"), run_name="__main__")
    finally:
        pulumi_policy.PolicyPack = real  # type: ignore[misc]
        sys.path[:] = saved_path
    pack = _CapturedPack.last
    if pack is None:
        raise StandinError(f"the policy pack in {folder} built no PolicyPack")
    return pack


def check_policies(folder: Path, run: mocked_run.ProgramRun, stack: str) -> tuple[str, list[str], list[str]]:
    """Run every resource-validation policy on every recorded resource: (pack name, mandatory, advisory)."""
    from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy

    pack = load_policy_pack(folder)
    mandatory: list[str] = []
    advisory: list[str] = []
    for policy in pack.policies:
        if not isinstance(policy, ResourceValidationPolicy):
            raise StandinError(f"policy {policy.name}: only resource validation policies are implemented (stand-in)")
        level = policy.enforcement_level or EnforcementLevel.ADVISORY
        if level == EnforcementLevel.DISABLED:
            continue
        into = mandatory if level in (EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE) else advisory
        for resource in (r for r in run.resources if r.custom):
            urn = f"urn:pulumi:{stack}::modelship::{resource.type}::{resource.name}"
            args = ResourceValidationArgs(resource.type, unwrapped(resource.inputs), urn, resource.name, None, None)  # type: ignore[arg-type]

            def report(
                message: str,
                urn: str | None = None,
                *,
                _at: str = f"{policy.name} ({resource.name})",
                _to: list[str] = into,
            ) -> None:
                _to.append(f"{_at}: {message}")

            policy.validate(args, report)  # the pack's own dispatch over its validation callbacks
    return pack.name, mandatory, advisory


def outputs_of(run: mocked_run.ProgramRun) -> dict[str, dict[str, Any]]:
    return {name: {"value": export.value, "secret": export.secret} for name, export in run.exports.items()}
