"""The CrossGuard policies, built from the plain checks in rules.py."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from infra.policies.rules import RULES, Check

PACK_NAME = "modelship-guardrails"


def _validate(check: Check) -> Any:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message, args.urn)

    return validate


def policies() -> list[ResourceValidationPolicy]:
    """One mandatory ResourceValidationPolicy per rule."""
    return [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_validate(rule.check),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for rule in RULES
    ]
