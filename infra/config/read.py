"""Reading one stack key: the dotted-key workaround, the typed readers every domain uses, the shared error.

Every read requires its key: Pulumi.yaml declares each key with its default, and the engine (or
`infra.mocked_run` under mocks, through `infra.config_merge`) merges the defaults in, so a key missing here
was never declared and fails loudly instead of silently falling back (the `config.get(...) or default` trap
that turns 0 and False into defaults).

Dotted keys (`service.replicas`) reach the program in two forms, and `raw` reads both. The engine looks a
declared key up as a path (pulumi/pulumi pkg/workspace/config.go mergeConfig, config.Map.Get(key, true)), so
it writes an unset key's default into an object, `modelship:service: {"replicas": "1", ...}`, while a value
set flat (a stack file's `modelship:service.replicas: 3`, `pulumi config set service.replicas 3`) stays
under its flat name. Pulumi's `Config.require` reads only the flat name, so on the real engine every dotted
key without a flat stack value would be "missing". The flat value wins when both exist.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi

# A Kubernetes label value; the shape of a model version and of a CNPG server name.
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class StackConfigError(ValueError):
    """A stack configuration that cannot be deployed; the message names the key and the fix."""


def invalid(problems: list[str]) -> StackConfigError:
    """One error listing every problem, so a stack is fixed in one round."""
    return StackConfigError("invalid stack configuration:\n  - " + "\n  - ".join(problems))


def raw(c: pulumi.Config, key: str) -> str | None:
    """The flat value of KEY, else the value at its path inside the object the engine wrote defaults into."""
    flat = pulumi.runtime.get_config(c.full_key(key))
    if flat is not None:
        return str(flat)
    root, _, rest = key.partition(".")
    stored = pulumi.runtime.get_config(c.full_key(root)) if rest else None
    if stored is None:
        return None
    try:
        node: Any = json.loads(str(stored))
    except ValueError:
        return None
    for part in rest.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return "true" if node else "false"
    return None if isinstance(node, dict | list) or node is None else str(node)


def string(c: pulumi.Config, key: str) -> str:
    value = raw(c, key)
    if value is None:
        message = f"missing required configuration {c.full_key(key)}: declare it in Pulumi.yaml with a default"
        raise StackConfigError(message)
    return value


def integer(c: pulumi.Config, key: str) -> int:
    value = string(c, key)
    try:
        return int(value)
    except ValueError:
        raise StackConfigError(f"{key} must be an integer, got {value!r}") from None


def boolean(c: pulumi.Config, key: str) -> bool:
    value = string(c, key)
    if value not in ("true", "True", "false", "False"):
        raise StackConfigError(f"{key} must be true or false, got {value!r}")
    return value in ("true", "True")


def secret(c: pulumi.Config, key: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(string(c, key))


def secret_text(c: pulumi.Config, key: str) -> str:
    """A secret's text, only to check it is set and well-formed; nothing is kept.

    The runtime's config map, not Config.get, which warns when it is handed a secret."""
    return (raw(c, key) or "").strip()
