"""Validate rendered custom resources against the real CRDs of the pinned operator, plugin and Gateway API versions.

The CRD files in infra/schemas/ are copied unchanged from the projects' repositories (their file names carry
the version; infra/components/database.py and infra/components/routing.py pin the same versions). A CRD
that serves several versions (HTTPRoute: v1 and v1beta1) is read at the version the manifest's apiVersion
names. A CRD's `openAPIV3Schema` is OpenAPI 3.0's dialect of JSON Schema, read here with jsonschema's Draft 7
rules after four translations of what the API
server does with the `x-kubernetes-*` extensions and `nullable`:

- unknown fields are rejected (`additionalProperties: false` on every object that lists its properties),
  as the API server does under strict field validation (`kubectl apply --validate=strict`, Pulumi's
  server-side apply) instead of silently pruning them; `x-kubernetes-preserve-unknown-fields` keeps them;
- `x-kubernetes-validations` (CEL rules) are evaluated with cel-python; transition rules (`oldSelf`) are
  skipped, as they are on create;
- `nullable: true` admits null;
- `x-kubernetes-int-or-string`, `-list-type`, `-list-map-keys` and `-map-type` need no translation: the
  generated schema already says `anyOf: [integer, string]`, and the list/map markers only drive merges.

`metadata` is left to the API server by the CRD (`type: object`); the checks the server and CNPG apply to
it (a namespaced object, a DNS-1123 label as the name, since CNPG names Services after it) are added here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType

from infra.components import database, routing

CRD_FILES = {**database.CRD_FILES, **routing.CRD_FILES}

_DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "maxLength": 63, "pattern": _DNS_LABEL},
        "namespace": {"type": "string", "pattern": _DNS_LABEL},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}
_CEL = celpy.Environment()


def crd_schema(path: Path, name: str | None = None) -> dict[str, Any]:
    """The JSON Schema of a served version (NAME, else the only one) of a CRD file, apiVersion and kind pinned."""
    crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and name in (None, v["name"])]
    schema: dict[str, Any] = _translate(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = _METADATA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    return schema


def _translate(node: Any) -> Any:
    if isinstance(node, list):
        return [_translate(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: (v if k in ("enum", "default", "example") else _translate(v)) for k, v in node.items()}
    if node.get("nullable") and "type" in node:
        node["type"] = [node["type"], "null"]
    if "properties" in node and "additionalProperties" not in node:
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    return node


def _cel_rules(validator: Any, rules: list[Mapping[str, Any]], instance: Any, schema: Any) -> Iterator[Any]:
    for rule in rules:
        if "oldSelf" in rule["rule"]:
            continue
        result = _CEL.program(_CEL.compile(rule["rule"])).evaluate({"self": json_to_cel(instance)})
        if not (isinstance(result, BoolType) and bool(result)):  # false, or a CEL evaluation error
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            yield jsonschema.ValidationError(f"{message} (x-kubernetes-validations: {rule['rule']})")


_Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"x-kubernetes-validations": _cel_rules})


@cache
def validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """The validator of one custom resource kind (see CRD_FILES for what exists)."""
    schema = crd_schema(CRD_FILES[(api_version, kind)], api_version.rsplit("/", 1)[-1])
    _Validator.check_schema(schema)
    found: jsonschema.protocols.Validator = _Validator(schema)
    return found


def is_custom(manifest: Mapping[str, Any]) -> bool:
    return (manifest["apiVersion"], manifest["kind"]) in CRD_FILES


def validate(manifest: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError (the most relevant one) when the object breaks its CRD."""
    if not is_custom(manifest):
        raise jsonschema.ValidationError(
            f"no CRD is pinned for {manifest['apiVersion']} {manifest['kind']} (CRD_FILES)"
        )
    error = jsonschema.exceptions.best_match(validator(manifest["apiVersion"], manifest["kind"]).iter_errors(manifest))
    if error is not None:
        raise error
