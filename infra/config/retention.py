"""The prediction-log retention CronJob (`retention.*`, runs `python -m service.retention`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from infra.config import read

# Five cron fields or a macro. The CronJob controller is the real parser; this catches a wrong field count
# (or a TZ= prefix, which the API rejects next to spec.timeZone) before anything is declared.
_CRON_FIELD = r"[0-9A-Za-z*/,?-]+"
_CRON = re.compile(rf"^({_CRON_FIELD}( {_CRON_FIELD}){{4}}|@(yearly|annually|monthly|weekly|daily|midnight|hourly))$")


@dataclass(frozen=True)
class RetentionConfig:
    """The prediction-log retention CronJob (`python -m service.retention`)."""

    enabled: bool
    days: int
    schedule: str
    batch: int


def load(c: pulumi.Config) -> RetentionConfig:
    return RetentionConfig(
        enabled=read.boolean(c, "retention.enabled"),
        days=read.integer(c, "retention.days"),
        schedule=read.string(c, "retention.schedule"),
        batch=read.integer(c, "retention.batch"),
    )


def problems(retention: RetentionConfig) -> list[str]:
    if not retention.enabled:
        return []
    found = []
    if retention.days < 1:
        found.append("retention.days must be at least 1 (0 would delete the whole prediction log)")
    if retention.batch < 1:
        found.append("retention.batch must be at least 1")
    if not _CRON.match(retention.schedule):
        found.append(f"retention.schedule must be five cron fields such as '17 3 * * *', got {retention.schedule!r}")
    return found
