"""How traffic reaches the stable and the canary pods: the track labels, and the Gateway API HTTPRoute spec.

Router `pods`: the Service selects the labels both Deployments share, so kube-proxy spreads connections over
every ready pod of either, and the split is the canary's share of ready pods. Router `gateway-api`: the
stack's Service selects the stable pods only, a second Service the canary pods, and an HTTPRoute attached to
an existing Gateway weighs the two exactly. docs/deploy.md, "Canary routing".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# A label both Deployments' pods carry, never part of a Deployment's selector (selectors are immutable: the
# stable Deployment keeps the selector it was created with, and the canary's adds `track: canary` to it).
TRACK = "track"
STABLE, CANARY = "stable", "canary"

# The Gateway API release whose standard-channel HTTPRoute CRD the tests validate against (infra/schemas/).
GATEWAY_API_VERSION = "v1.3.0"
HTTPROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
CRD_FILES = {
    (HTTPROUTE_API_VERSION, "HTTPRoute"): _SCHEMAS
    / f"gateway-api-{GATEWAY_API_VERSION.lstrip('v')}-gateway.networking.k8s.io_httproutes.yaml",
}


def parent_ref(gateway: str) -> dict[str, str]:
    """`name` or `namespace/name` (canary.gateway) as an HTTPRoute parentRef; no namespace = the route's own."""
    namespace, _, name = gateway.rpartition("/")
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name}
    return {**ref, "namespace": namespace} if namespace else ref


def http_route_spec(gateway: str, port: int, backends: list[tuple[str, int]]) -> dict[str, Any]:
    """One rule for every path, forwarding to BACKENDS (Service name, weight) on PORT (their Service port)."""
    refs = [{"group": "", "kind": "Service", "name": name, "port": port, "weight": weight} for name, weight in backends]
    return {
        "parentRefs": [parent_ref(gateway)],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs}],
    }
