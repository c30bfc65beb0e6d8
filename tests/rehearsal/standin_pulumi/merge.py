"""Config merging and validation as the real engine does it: infra/config_merge.py, the project's one port of
pkg/workspace/config.go `mergeConfig` (its sources are cited there), shared with infra.mocked_run and the docs.

This module only reports that port's refusals as the stand-in's errors (`error: <message>` on stderr), and
refuses a stack file's `secure:` values, which the stand-in cannot decrypt.

A value here is {"value": <text>, "secret": bool, "object": bool}; an object's text is JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra import config_merge
from infra.config_merge import ConfigMap, Value, full_key, get, plain, program_config, set_value, text, valid_type
from tests.rehearsal.standin_pulumi.state import StandinError

__all__ = [
    "ConfigMap",
    "Value",
    "full_key",
    "get",
    "load_project",
    "merge",
    "plain",
    "program_config",
    "set_value",
    "stack_file_config",
    "text",
    "valid_type",
]


@contextmanager
def _as_standin_error() -> Iterator[None]:
    try:
        yield
    except config_merge.ConfigMergeError as exc:
        raise StandinError(str(exc)) from None


def load_project(work_dir: Path) -> dict[str, Any]:
    with _as_standin_error():
        return config_merge.load_project(work_dir)


def _refuse_secure(file_name: str, key: str) -> Value:
    raise StandinError(
        f"{file_name}: {key} holds a `secure:` value; decrypting stack-file secrets is not implemented "
        "by the stand-in (set secrets with `pulumi config set --secret`)"
    )


def stack_file_config(work_dir: Path, project: str, stack: str) -> ConfigMap:
    """`Pulumi.<stack>.yaml` of the work dir; optional (a PR stack has none)."""
    return config_merge.stack_file_config(work_dir, project, stack, secure=_refuse_secure)


def merge(project: Mapping[str, Any], stack: str, stack_config: ConfigMap) -> ConfigMap:
    """config.go mergeConfig with validate=true: the config `up` and `preview` hand the program."""
    with _as_standin_error():
        return config_merge.merge(project, stack, stack_config)
