"""Domain errors of the pipelines. Each message says what went wrong and what to do next.

A check that runs and fails is not an error: stages return a result with `passed=False`. These
exceptions are for stages that could not do their job at all. The CLI prints the message as one line and
exits 2 for a `ConfigError` (the request itself was wrong: fix the command) and 1 for the others.
"""

from __future__ import annotations


class StageError(Exception):
    """A stage could not complete; the message is meant for the person at the terminal."""


class StackBusyError(StageError):
    """Another update is running on the stack (Pulumi's ConcurrentUpdateError, or the local lock)."""


class UpdateFailedError(StageError):
    """`up` ran and failed; the stack history records the failed update."""

    def __init__(self, message: str, update: int | None = None) -> None:
        super().__init__(message)
        self.update = update


class NothingToRollBackError(StageError):
    """The history holds no earlier successful update to return to."""


class ConfigError(StageError):
    """A stage was asked for something inconsistent (missing artifact, unknown stack, bad flag)."""


class UnknownStackError(ConfigError):
    """The stack named on the command line does not exist on that target."""


class UnknownVersionError(NothingToRollBackError, ConfigError):
    """The model version named on the command line never ran on the stack (a typo, most often)."""
