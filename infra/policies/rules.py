"""The checks of the modelship policy pack, as plain functions: (resource_type, props) -> violations.

`props` are a resource's inputs as CrossGuard hands them to a policy: camelCase keys, numbers possibly as
floats, and Pulumi secrets already unwrapped (the analyzer does that before validation). A value still in
the wire form `{<sig>: <secret sig>, "value": ...}` (what Pulumi mocks capture) counts as a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Check = Callable[[str, Mapping[str, Any]], list[str]]

_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - Pulumi's secret marker, not a password
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_SENSITIVE_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|CREDENTIAL|PRIVATE_?KEY|DATABASE_URL|DSN", re.I)
_REFERENCE_NAME = re.compile(r"_(FILE|PATH|DIR|NAME)$", re.I)  # names a file or an object, holds no secret
_PLACEHOLDERS = {"changeme", "change-me", "password", "secret", "admin", "postgres", "example", "test", "123456"}
GPU_RESOURCE = "nvidia.com/gpu"
GPU_POOL_LABEL = "modelship.dev/pool"
_LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"}
_TEMPLATED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check


# --- access helpers ----------------------------------------------------------------------------


def kind_of(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def _is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(_SIG_KEY) == _SECRET_SIG


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) and not _is_secret(value) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The PodSpec inside a workload, or None for resources that run no pods."""
    kind, spec = kind_of(resource_type), _map(props.get("spec"))
    if not resource_type.startswith("kubernetes:"):
        return None
    if kind == "Pod":
        return spec
    if kind in _TEMPLATED:
        return _map(_map(spec.get("template")).get("spec"))
    if kind == "CronJob":
        return _map(_map(_map(_map(spec.get("jobTemplate")).get("spec")).get("template")).get("spec"))
    return None


def containers(pod: Mapping[str, Any], init: bool = True) -> Iterator[Mapping[str, Any]]:
    fields = ("containers", "initContainers", "ephemeralContainers") if init else ("containers",)
    for field in fields:
        for container in _list(pod.get(field)):
            yield _map(container)


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("name", "?"))


# --- the checks ----------------------------------------------------------------------------------


def check_image_digest(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    pod = pod_spec(resource_type, props)
    if pod is None:
        return []
    return [
        f"container {_name(c)}: image {c.get('image')!r} is not pinned by digest (repo@sha256:<64 hex>)"
        for c in containers(pod)
        if not _DIGEST.search(str(c.get("image", "")))
    ]


def check_pod_security_restricted(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    pod = pod_spec(resource_type, props)
    if pod is None:
        return []
    problems = [f"pod sets {f}" for f in ("hostNetwork", "hostPID", "hostIPC") if pod.get(f) is True]
    problems += [
        f"volume {v.get('name')} is a hostPath" for v in map(_map, _list(pod.get("volumes"))) if v.get("hostPath")
    ]
    pod_ctx = _map(pod.get("securityContext"))
    for c in containers(pod):
        problems += [f"container {_name(c)}: {p}" for p in _container_security(pod_ctx, _map(c.get("securityContext")))]
    return problems


def _container_security(pod_ctx: Mapping[str, Any], ctx: Mapping[str, Any]) -> list[str]:
    problems = []
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if non_root is not True:
        problems.append("runAsNonRoot is not true")
    if 0 in (ctx.get("runAsUser"), pod_ctx.get("runAsUser")):
        problems.append("runs as uid 0")
    seccomp = _map(ctx.get("seccompProfile")).get("type", _map(pod_ctx.get("seccompProfile")).get("type"))
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"seccompProfile.type is {seccomp!r}, not RuntimeDefault")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if ctx.get("privileged") is True:
        problems.append("is privileged")
    caps = _map(ctx.get("capabilities"))
    if "ALL" not in _list(caps.get("drop")):
        problems.append("capabilities.drop does not contain ALL")
    if set(_list(caps.get("add"))) - {"NET_BIND_SERVICE"}:
        problems.append(f"adds capabilities {sorted(set(_list(caps.get('add'))))}")
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    return problems


def check_resource_limits(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    pod = pod_spec(resource_type, props)
    if pod is None:
        return []
    problems = []
    for c in containers(pod):
        resources = _map(c.get("resources"))
        for section in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if r not in _map(resources.get(section))]
            if missing:
                problems.append(f"container {_name(c)}: no {section} for {', '.join(missing)}")
    return problems


def check_probes(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    pod = pod_spec(resource_type, props)
    if pod is None or kind_of(resource_type) not in _LONG_RUNNING:
        return []  # Jobs finish; probes are for things that serve
    return [
        f"container {_name(c)}: no {probe}"
        for c in containers(pod, init=False)
        for probe in ("readinessProbe", "livenessProbe")
        if not c.get(probe)
    ]


def check_postgres_not_exposed(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    kind, spec = kind_of(resource_type), _map(props.get("spec"))
    if resource_type == "kubernetes:postgresql.cnpg.io/v1:Cluster":
        services = _list(_map(_map(spec.get("managed")).get("services")).get("additional"))
        types = [_map(_map(_map(s).get("serviceTemplate")).get("spec")).get("type") for s in services]
        return [
            f"CNPG managed service of type {t} exposes Postgres" for t in types if t in ("LoadBalancer", "NodePort")
        ]
    if kind != "Service" or not resource_type.startswith("kubernetes:core/"):
        return []
    exposed = spec.get("type") in ("LoadBalancer", "NodePort") or bool(_list(spec.get("externalIPs")))
    if exposed and _selects_postgres(spec):
        return [f"Service of type {spec.get('type', 'ClusterIP')} exposes Postgres outside the cluster"]
    return []


def _selects_postgres(spec: Mapping[str, Any]) -> bool:
    selector = _map(spec.get("selector"))
    if any(k.startswith("cnpg.io/") or "postgres" in f"{k}={v}".lower() for k, v in selector.items()):
        return True
    for port in map(_map, _list(spec.get("ports"))):
        if 5432 in (_as_int(port.get("port")), _as_int(port.get("targetPort"))):
            return True
        if "postgres" in str(port.get("name", "")).lower():
            return True
    return False


def check_no_plaintext_secrets(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    kind = kind_of(resource_type)
    problems = []
    if kind == "Secret" and resource_type.startswith("kubernetes:core/"):
        for field in ("data", "stringData"):
            for key, value in _map(props.get(field)).items():
                if isinstance(value, str) and value.strip().lower() in _PLACEHOLDERS:
                    problems.append(f"{field}.{key} holds a hard-coded placeholder; generate it or use a Pulumi secret")
        return problems
    scanned = {k: v for k, v in props.items() if k != "registry"}  # docker login: a secret by design
    problems += [f"{path} embeds credentials in a URL" for path, s in _strings(scanned) if _CREDENTIAL_URL.search(s)]
    pod = pod_spec(resource_type, props)
    for c in containers(pod) if pod is not None else ():
        for env in map(_map, _list(c.get("env"))):
            if _sensitive(str(env.get("name", ""))) and isinstance(env.get("value"), str) and env["value"]:
                problems.append(f"container {_name(c)}: env {env['name']} is a literal; use a secretKeyRef")
    if kind == "ConfigMap":
        problems += [
            f"data.{k} looks like a credential in a ConfigMap"
            for k, v in _map(props.get("data")).items()
            if _sensitive(k) and v
        ]
    if kind == "Image" and resource_type.startswith("docker:"):
        args = _map(_map(props.get("build")).get("args"))
        problems += [
            f"build arg {k} looks like a credential (it stays in the image history)" for k in args if _sensitive(k)
        ]
    return problems


def _sensitive(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name)) and not _REFERENCE_NAME.search(name)


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if _is_secret(value):
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, Sequence):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def check_gpu_toleration(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    pod = pod_spec(resource_type, props)
    if pod is None:
        return []
    wants_gpu = any(_requests_gpu(c) for c in containers(pod))
    on_gpu_pool = _map(pod.get("nodeSelector")).get(GPU_POOL_LABEL) == "gpu"
    if (wants_gpu or on_gpu_pool) and not any(_tolerates_gpu(_map(t)) for t in _list(pod.get("tolerations"))):
        return ["pod asks for a GPU but does not tolerate the nvidia.com/gpu=present:NoSchedule taint"]
    return []


def _requests_gpu(container: Mapping[str, Any]) -> bool:
    resources = _map(container.get("resources"))
    amounts = [_map(resources.get(s)).get(GPU_RESOURCE) for s in ("limits", "requests")]
    return any(a is not None and str(a) not in ("0", "0.0") for a in amounts)


def _tolerates_gpu(toleration: Mapping[str, Any]) -> bool:
    if toleration.get("effect") not in (None, "", "NoSchedule"):
        return False
    if toleration.get("operator") == "Exists":
        return toleration.get("key") in (None, "", GPU_RESOURCE)
    return toleration.get("key") == GPU_RESOURCE and toleration.get("value") == "present"


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


RULES = [
    Rule("images-by-digest", "Pod images are pinned by digest (repo@sha256:...), never by tag.", check_image_digest),
    Rule(
        "pod-security-restricted",
        "Pods meet Pod Security 'restricted' (non-root, seccomp, no escalation, drop ALL) with a read-only root.",
        check_pod_security_restricted,
    ),
    Rule("resource-limits", "Every container sets CPU and memory requests and limits.", check_resource_limits),
    Rule("probes-present", "Every serving container has readiness and liveness probes.", check_probes),
    Rule(
        "postgres-not-exposed",
        "Postgres is reachable only inside the cluster: no LoadBalancer, NodePort or external IP in front of it.",
        check_postgres_not_exposed,
    ),
    Rule(
        "no-plaintext-secrets",
        "No credential in env literals, ConfigMaps, URLs or build args; no placeholder passwords in Secrets.",
        check_no_plaintext_secrets,
    ),
    Rule(
        "gpu-pods-tolerate-gpu-taint",
        "Pods that want a GPU tolerate the nvidia.com/gpu=present:NoSchedule taint.",
        check_gpu_toleration,
    ),
]
