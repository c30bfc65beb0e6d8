"""How the Pulumi engine merges a project's declared config into a stack's, ported from its source.

One port, three users: `infra.mocked_run` (the offline renderer and tests/infra), the stand-in CLI of the
rehearsal (tests/rehearsal/standin_pulumi) and `make docs` (pipelines/devtools/settings_docs.py). No Pulumi
import: it is YAML and JSON only.

Sources (github:pulumi/pulumi at 1b5949891b3cefcb9974752b24a5ecef0acc86c8):
- pkg/workspace/config.go, `mergeConfig`: project defaults are merged into the stack's config map; every
  declared key is looked up with `stackConfig.Get(key, true)` (path=true), a missing key with neither a value
  nor a default is an error naming it ("Stack '<s>' is missing configuration value '<key>'"), a missing key
  with a default gets it through `stackConfig.Set(key, value, true)`; then `validateStackConfigValues`
  type-checks, again by path, every explicitly typed key ("... must be of type '<t>'"). A key the project
  does not declare is accepted silently.
- sdk/go/common/resource/config/map.go, `Map.Get`/`Map.Set`: with path=true, the key `ns:a.b` is the path
  a -> b inside the object stored under `ns:a`. So a flat stack value `ns:a.b` is NOT found by that lookup:
  the declared default is then written as the object `ns:a: {"b": <default>}` next to the flat value, and the
  type check sees only the default. The program receives both (objects as JSON text).
- sdk/go/common/workspace/project.go, `ValidateConfigValue`: string must be a string; integer an int, a
  whole float or a string strconv.Atoi accepts; boolean a bool or the strings "true"/"false".

A value here is {"value": <text>, "secret": bool, "object": bool}; an object's text is JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

Value = dict[str, Any]
ConfigMap = dict[str, Value]

_ATOI = re.compile(r"^[+-]?[0-9]+$")


class ConfigMergeError(ValueError):
    """What the engine refuses: a missing required key, a value of the wrong type, no project file."""


def text(raw: Any) -> str:
    """A scalar as the CLI stores it (`fmt.Sprintf("%v")`: booleans lower-case)."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def plain(raw: Any) -> Value:
    if isinstance(raw, Mapping | list):
        return {"value": json.dumps(raw), "secret": False, "object": True}
    return {"value": text(raw), "secret": False, "object": False}


def secret(value: str) -> Value:
    return {"value": value, "secret": True, "object": False}


def load_project(work_dir: Path) -> dict[str, Any]:
    path = work_dir / "Pulumi.yaml"
    if not path.is_file():
        raise ConfigMergeError(f"no Pulumi.yaml project file found in {work_dir}")
    project: dict[str, Any] = yaml.safe_load(path.read_text())
    return project


def stack_values(work_dir: Path, project: str, stack: str) -> dict[str, Any]:
    """The config of `Pulumi.<stack>.yaml` as written, by full key; {} without the file (a PR stack has none)."""
    path = work_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return {}
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return {full_key(project, str(key)): raw for key, raw in config.items()}


def stack_file_config(
    work_dir: Path, project: str, stack: str, secure: Callable[[str, str], Value] | None = None
) -> ConfigMap:
    """`Pulumi.<stack>.yaml` as a config map. A `secure:` value goes to SECURE(file name, full key), which
    returns what stands for it (nothing here can decrypt it); without SECURE it is refused."""
    values: ConfigMap = {}
    for key, raw in stack_values(work_dir, project, stack).items():
        if isinstance(raw, Mapping) and "secure" in raw:
            if secure is None:
                raise ConfigMergeError(f"Pulumi.{stack}.yaml: {key} holds a `secure:` value, which is not decrypted")
            values[key] = secure(f"Pulumi.{stack}.yaml", key)
        else:
            values[key] = plain(raw)
    return values


def full_key(project: str, key: str) -> str:
    """config.go parseConfigKey: a key without a namespace belongs to the project."""
    return key if ":" in key else f"{project}:{key}"


def _split(key: str) -> tuple[str, list[str]]:
    # map.go parseKeyPath: the name is a property path; the first segment names the stored key.
    namespace, name = key.split(":", 1)
    segments = name.split(".")
    return f"{namespace}:{segments[0]}", segments


def get(m: ConfigMap, key: str, path: bool) -> Value | None:
    """map.go Map.Get."""
    if not path:
        return m.get(key)
    root_key, segments = _split(key)
    root = m.get(root_key)
    if len(segments) == 1 or root is None:
        return root
    if not root.get("object"):
        return None
    node: Any = json.loads(root["value"])
    for segment in segments[1:]:
        if not isinstance(node, Mapping) or segment not in node:
            return None
        node = node[segment]
    found = plain(node)
    found["secret"] = bool(root.get("secret"))
    return found


def set_value(m: ConfigMap, key: str, value: Value, path: bool) -> None:
    """map.go Map.Set."""
    if not path:
        m[key] = value
        return
    root_key, segments = _split(key)
    if len(segments) == 1:
        m[root_key] = value
        return
    root = m.get(root_key)
    obj: Any = json.loads(root["value"]) if root and root.get("object") else {}
    node = obj
    for segment in segments[1:-1]:
        node = node.setdefault(segment, {})
    node[segments[-1]] = json.loads(value["value"]) if value.get("object") else value["value"]
    m[root_key] = {"value": json.dumps(obj), "secret": bool(value.get("secret")), "object": True}


def merge(project: Mapping[str, Any], stack: str, stack_config: ConfigMap) -> ConfigMap:
    """config.go mergeConfig with validate=true: the config `up` and `preview` hand the program."""
    name = str(project["name"])
    merged = {k: dict(v) for k, v in stack_config.items()}
    declared: Mapping[str, Any] = project.get("config") or {}
    missing = []
    for short in sorted(declared):
        spec = declared[short] if isinstance(declared[short], Mapping) else {"default": declared[short]}
        key = full_key(name, short)
        if get(merged, key, path=True) is not None:
            continue
        if "value" not in spec and "default" not in spec:
            if key.split(":", 1)[0] == name:
                missing.append(short)
            continue
        set_value(merged, key, plain(spec.get("default", spec.get("value"))), path=True)
    if missing:
        raise ConfigMergeError(_missing_error(stack, missing))
    _validate(name, stack, declared, merged)
    return merged


def _missing_error(stack: str, missing: list[str]) -> str:
    # config.go missingStackConfigurationKeysError / formatMissingKeys
    if len(missing) == 1:
        return f"Stack '{stack}' is missing configuration value '{missing[0]}'"
    quoted = [f"'{k}'" for k in sorted(missing)]
    return f"Stack '{stack}' is missing configuration values {', '.join(quoted[:-1])} and {quoted[-1]}"


def _validate(project: str, stack: str, declared: Mapping[str, Any], merged: ConfigMap) -> None:
    """config.go validateStackConfigValues: typed keys, looked up by path."""
    for short in sorted(declared):
        spec = declared[short]
        if not isinstance(spec, Mapping) or "type" not in spec:
            continue
        value = get(merged, full_key(project, short), path=True)
        if value is None:
            continue
        if spec.get("secret") and not value.get("secret"):
            raise ConfigMergeError(f"Stack '{stack}' with configuration key '{short}' must be encrypted as it's secret")
        content: Any = json.loads(value["value"]) if value.get("object") else value["value"]
        if not valid_type(str(spec["type"]), content):
            raise ConfigMergeError(f"Stack '{stack}' with configuration key '{short}' must be of type '{spec['type']}'")


def valid_type(type_name: str, content: Any) -> bool:
    """project.go ValidateConfigValue, for the scalar types and object."""
    if type_name == "string":
        return isinstance(content, str)
    if type_name == "integer":
        if isinstance(content, bool):
            return False
        if isinstance(content, int) or (isinstance(content, float) and content.is_integer()):
            return True
        return isinstance(content, str) and bool(_ATOI.match(content))
    if type_name == "boolean":
        return content in ("true", "false") or isinstance(content, bool)
    if type_name == "object":
        return isinstance(content, Mapping)
    if type_name == "array":
        return isinstance(content, list)
    raise ConfigMergeError(f"config type {type_name!r} is not implemented by this port (infra/config_merge.py)")


def program_config(merged: ConfigMap) -> tuple[dict[str, str], list[str]]:
    """What the language host passes the program: every key as text (objects as JSON), and the secret keys."""
    values = {key: str(value["value"]) for key, value in merged.items()}
    return values, sorted(key for key, value in merged.items() if value.get("secret"))
