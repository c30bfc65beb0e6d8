"""The Prometheus Operator CRDs at the pinned version, kept verbatim, turned into JSON-schema validators.

The files are monitoring.coreos.com_{podmonitors,prometheusrules}.yaml of prometheus-operator/prometheus-operator
at tag v0.93.0 (example/prometheus-operator-crd/, commit f8fafd475f3d132e239432ae6172de60a6cb6516).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from infra.components.monitoring import API_VERSION, PROMETHEUS_OPERATOR_VERSION

HERE = Path(__file__).parent
PLURALS = {"PodMonitor": "podmonitors", "PrometheusRule": "prometheusrules"}


def crd_file(kind: str) -> Path:
    return HERE / f"prometheus-operator-{PROMETHEUS_OPERATOR_VERSION}-{PLURALS[kind]}.yaml"


def strict(schema: Any) -> Any:
    """Unknown fields rejected, as `kubectl apply` (field validation Strict) rejects them on a structural schema.

    An object schema with `properties` and no `additionalProperties` or `x-kubernetes-preserve-unknown-fields`
    prunes unknown fields on the server; Strict validation turns that pruning into an error.
    """
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if isinstance(out.get("pattern"), str) and out["pattern"].startswith("^(?i)"):
            # Go's RE2 takes a flag group anywhere; Python wants global flags first. Same language.
            out["pattern"] = "(?i)^" + out["pattern"][len("^(?i)") :]
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@functools.cache
def validator(kind: str) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load(crd_file(kind).read_text())
    assert crd["metadata"]["annotations"]["operator.prometheus.io/version"] == PROMETHEUS_OPERATOR_VERSION.lstrip("v")
    group, version = API_VERSION.split("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    served = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    schema = strict(served[0]["schema"]["openAPIV3Schema"])
    # the API server checks these itself; the CRD schema leaves metadata open
    schema["properties"]["apiVersion"] = {"const": API_VERSION}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = {"type": "object", "required": ["name", "namespace"]}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate(manifest: dict[str, Any]) -> None:
    validator(manifest["kind"]).validate(manifest)
