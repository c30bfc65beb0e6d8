"""Apply the recorded Deployments and their Service to this machine: one local process per Deployment, behind
a real HAProxy standing in for the Service (kube-proxy).

What a kubelet would give the container, the stand-in gives the process:
- the container's command, or the image's CMD (the Dockerfile's) when it has none; `uvicorn` runs from the
  virtualenv, and `--host/--port` become 127.0.0.1 and a free port (the pod IP and its containerPort);
- the env of `envFrom`/`env`, with ConfigMap and Secret values resolved from the recorded objects;
- each mounted Secret/ConfigMap written as files, and each emptyDir made, under a folder standing in for the
  container's filesystem; env values under a mount path are rewritten to that folder;
- each initContainer run once before the service (its command, paths rewritten: the shadow's model copy);
- `/app/model` (the artifact baked into the image) is the folder the image digest was built from: the
  build-push stand-in's `$MODELSHIP_REHEARSAL_DIR/images.json`, or, for an image infra's docker Image built
  itself (no image.digestRef), its MODEL_DIR build arg;
- a real (embedded) Postgres per stack wherever DATABASE_URL names the CloudNativePG `-rw` Service.
A rollout starts the new process, waits for the readinessProbe path, adds it to the Service, and only then
drains and stops the old one (maxSurge 1, maxUnavailable 0). An unchanged pod template leaves the running
process alone, as a Deployment controller would. The Service weighs each process by its Deployment's replicas
(the canary's split by ready pods). A declared PodMonitor becomes a file_sd file for a real Prometheus.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess  # nosec B404
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra import mocked_run
from infra.config.settings_bridge import default
from pipelines.errors import UpdateFailedError
from pipelines.targets import local_process as proc
from pipelines.targets.local_lb import LoadBalancer, Server
from tests.rehearsal.standin_pulumi.engine import unwrapped
from tests.rehearsal.standin_pulumi.state import StackState, StandinError

REPO_ROOT = mocked_run.REPO_ROOT
IMAGE_MODEL_DIR = default("model_dir")  # the service's default; Dockerfile: COPY ${MODEL_DIR}/ /app/model/
_CNPG_RW = re.compile(r"^[a-z0-9-]+-rw\.[a-z0-9-]+\.svc\.cluster\.local$")
STOP_TIMEOUT_S = 25.0
# The image's own environment (Dockerfile ENV): the code is importable from the work tree as from /opt/modelship.
_BASE_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "PYTHONPATH": str(REPO_ROOT),
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "MODELSHIP_MODEL_DIR": IMAGE_MODEL_DIR,
    "MODELSHIP_SPOOL_DIR": "/var/spool/modelship",
}


def image_cmd(dockerfile: Path = REPO_ROOT / "Dockerfile") -> list[str]:
    """The last CMD of the Dockerfile (exec form)."""
    lines = [line for line in dockerfile.read_text().splitlines() if line.startswith("CMD [")]
    if not lines:
        raise StandinError(f"{dockerfile} has no exec-form CMD")
    command: list[str] = json.loads(lines[-1][len("CMD ") :])
    return command


def host_command(command: list[str], port: int) -> list[str]:
    """The container's command as a process here: the virtualenv's uvicorn, on 127.0.0.1:<port>."""
    out = [sys.executable, "-m", "uvicorn", *command[1:]] if command[0] == "uvicorn" else list(command)
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in out:
            out[out.index(flag) + 1] = value
    return out


def _objects(resources: list[mocked_run.Captured], kind: str) -> dict[str, dict[str, Any]]:
    return {
        str(unwrapped(r.inputs).get("metadata", {}).get("name")): unwrapped(r.inputs)
        for r in resources
        if r.is_kubernetes_object and r.kind == kind
    }


def _data(config_map: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (config_map.get("data") or {}).items()}


def _secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    values = {k: base64.b64decode(str(v)).decode() for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return values


class Pod:
    """The service container of one Deployment, resolved against the recorded objects."""

    def __init__(self, resources: list[mocked_run.Captured], deployment: Mapping[str, Any]) -> None:
        self.deployment = dict(deployment)
        self.name = str(self.deployment["metadata"]["name"])
        self.labels: dict[str, str] = dict(self.deployment["spec"]["template"]["metadata"].get("labels") or {})
        self.spec = self.deployment["spec"]["template"]["spec"]
        self.container = self.spec["containers"][0]
        self.config_maps = _objects(resources, "ConfigMap")
        self.secrets = _objects(resources, "Secret")
        self.images = [unwrapped(r.inputs) for r in resources if r.type == mocked_run.IMAGE_TYPE]

    def template_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.deployment["spec"]["template"], sort_keys=True).encode()).hexdigest()

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in self.container.get("envFrom") or []:
            if ref := source.get("configMapRef"):
                env.update(_data(self._get(self.config_maps, ref["name"], "ConfigMap")))
            if ref := source.get("secretRef"):
                env.update(_secret_data(self._get(self.secrets, ref["name"], "Secret")))
        for item in self.container.get("env") or []:
            env[item["name"]] = self._env_value(item)
        return env

    def _env_value(self, item: Mapping[str, Any]) -> str:
        if "value" in item:
            return str(item["value"])
        source = item.get("valueFrom") or {}
        if ref := source.get("secretKeyRef"):
            return _secret_data(self._get(self.secrets, ref["name"], "Secret"))[ref["key"]]
        if ref := source.get("configMapKeyRef"):
            return _data(self._get(self.config_maps, ref["name"], "ConfigMap"))[ref["key"]]
        raise StandinError(f"env {item.get('name')}: valueFrom {sorted(source)} is not implemented by the stand-in")

    @staticmethod
    def _get(objects: Mapping[str, dict[str, Any]], name: str, kind: str) -> dict[str, Any]:
        if name not in objects:
            # CreateContainerConfigError in a real cluster: the pod never starts.
            raise UpdateFailedError(f"{kind} {name} referenced by the Deployment does not exist")
        return objects[name]

    def mounts(self, root: Path) -> dict[str, Path]:
        """Write every mounted volume under ROOT; return {mountPath: host folder}."""
        volumes = {v["name"]: v for v in self.spec.get("volumes") or []}
        found = {}
        for mount in self.container.get("volumeMounts") or []:
            host = root / mount["mountPath"].lstrip("/")
            shutil.rmtree(host, ignore_errors=True)
            host.mkdir(parents=True)
            volume = volumes[mount["name"]]
            if "secret" in volume:
                files = _secret_data(self._get(self.secrets, volume["secret"]["secretName"], "Secret"))
            elif "configMap" in volume:
                files = _data(self._get(self.config_maps, volume["configMap"]["name"], "ConfigMap"))
            elif "emptyDir" in volume:
                files = {}
            else:
                raise StandinError(f"volume {mount['name']}: only secret, configMap and emptyDir are implemented")
            for name, content in files.items():
                (host / name).write_text(content)
                (host / name).chmod(0o440)
            found[mount["mountPath"]] = host
        return found

    def artifact_dir(self, images_json: Path | None, container: Mapping[str, Any] | None = None) -> Path:
        """The artifact folder the container's image (the service's, or an initContainer's) was built from."""
        image = str((container or self.container)["image"])
        digest = image.split("@", 1)[-1]
        known = json.loads(images_json.read_text()) if images_json and images_json.is_file() else {}
        if digest in known:
            return Path(known[digest])
        for built in self.images:
            args = (built.get("build") or {}).get("args") or {}
            if str(built.get("imageName", "")).rsplit(":", 1)[0] == image.split("@", 1)[0] and "MODEL_DIR" in args:
                return REPO_ROOT / str(args["MODEL_DIR"])
        # ErrImagePull in a real cluster: the rollout never becomes ready.
        raise UpdateFailedError(f"image {image} was not built by the build-push stand-in nor by this program")

    def run_init_containers(self, images_json: Path | None, mounted: Mapping[str, Path]) -> None:
        """Each initContainer once, in order, before the service, as a kubelet runs them: its command, with its
        image's `/app/model` and its volume mounts (those the service mounts too, e.g. an emptyDir) rewritten
        to their folders here. A non-zero exit fails the rollout (Init:Error in a real cluster)."""
        for init in self.spec.get("initContainers") or []:
            paths = {IMAGE_MODEL_DIR: self.artifact_dir(images_json, init)}
            for mount in init.get("volumeMounts") or []:
                if mount["mountPath"] not in mounted:
                    raise StandinError(f"initContainer {init['name']}: only volumes the service mounts too are "
                                       f"implemented ({mount['mountPath']})")  # fmt: skip
                paths[mount["mountPath"]] = mounted[mount["mountPath"]]
            argv = [_rewrite_text(arg, paths) for arg in [*(init.get("command") or []), *(init.get("args") or [])]]
            argv = [sys.executable, *argv[1:]] if argv and argv[0] == "python" else argv
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # nosec B603
            if done.returncode != 0:
                raise UpdateFailedError(f"initContainer {init['name']} exited {done.returncode}: "
                                        f"{done.stderr.strip()[-300:]}")  # fmt: skip

    def ready_path(self) -> str:
        return str(self.container["readinessProbe"]["httpGet"]["path"])

    def command(self) -> list[str]:
        return [*(self.container.get("command") or image_cmd()), *(self.container.get("args") or [])]


def _rewrite(env: dict[str, str], paths: Mapping[str, Path]) -> dict[str, str]:
    """Env values naming a path inside the container now name its stand-in on this machine."""
    out = {}
    for key, value in env.items():
        for inside, host in sorted(paths.items(), key=lambda kv: -len(kv[0])):
            if value == inside or value.startswith(inside.rstrip("/") + "/"):
                value = str(host) + value[len(inside.rstrip("/")) :]
                break
        out[key] = value
    return out


def _rewrite_text(text: str, paths: Mapping[str, Path]) -> str:
    """A command argument with every container path in it replaced by its stand-in folder (longest first)."""
    for inside, host in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(inside.rstrip("/"), str(host))
    return text


def _database_url(env: dict[str, str], state: StackState) -> dict[str, str]:
    url = env.get("DATABASE_URL")
    if not url or not _CNPG_RW.match(urlsplit(url).hostname or ""):
        return env
    from pipelines.devtools.embedded_pg import EmbeddedPostgres

    try:
        local = EmbeddedPostgres(state.run_dir / "pg").start()
    except RuntimeError as exc:
        raise UpdateFailedError(f"the stack's Postgres (stand-in for the CNPG Cluster) did not start: {exc}") from exc
    return {**env, "DATABASE_URL": local}


def _deployments(resources: list[mocked_run.Captured]) -> list[Pod]:
    found = [unwrapped(r.inputs) for r in resources if r.is_kubernetes_object and r.kind == "Deployment"]
    if not found:
        raise StandinError("the program declared no Deployment")
    return [Pod(resources, d) for d in found]


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _service_selector(resources: list[mocked_run.Captured], pods: list[Pod]) -> dict[str, str]:
    """The selector of the Service in front of the pods: the one that selects the most Deployments (the pods
    router's one Service selects stable and canary alike). An HTTPRoute's exact weights are not implemented."""
    if any(r.is_kubernetes_object and r.kind == "HTTPRoute" for r in resources):
        raise StandinError("an HTTPRoute (canary.router gateway-api) is not implemented by the stand-in")
    services = [dict(unwrapped(r.inputs).get("spec", {}).get("selector") or {})
                for r in resources if r.is_kubernetes_object and r.kind == "Service"]  # fmt: skip
    scored = sorted(services, key=lambda sel: -sum(_selects(sel, p.labels) for p in pods))
    if not scored or not any(_selects(scored[0], p.labels) for p in pods):
        raise StandinError("no Service selects the Deployments' pods")
    return scored[0]


def _replicas(resources: list[mocked_run.Captured], pod: Pod) -> int:
    """The pods the Deployment has once ready: spec.replicas, else its HPA's minReplicas, else 1."""
    if (count := pod.deployment["spec"].get("replicas")) is not None:
        return int(count)
    for hpa in _objects(resources, "HorizontalPodAutoscaler").values():
        if hpa["spec"]["scaleTargetRef"]["name"] == pod.name:
            return int(hpa["spec"].get("minReplicas") or 1)
    return 1


@dataclass(frozen=True)
class Running:
    """One pod's process: the Deployment it belongs to, where it listens, the pod template (hash) it runs."""

    deployment: str
    pid: int
    port: int
    template: str
    labels: Mapping[str, str]

    @property
    def name(self) -> str:  # its HAProxy server
        return f"{self.deployment}-{self.port}"


@dataclass(frozen=True)
class Served:
    """The stack's Service: HAProxy's port, what the stack's serviceUrl names."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _pods_file(state: StackState) -> Path:
    return state.run_dir / "pods.json"


def running(state: StackState) -> list[Running]:
    path = _pods_file(state)
    listed = json.loads(path.read_text()) if path.exists() else []
    pods = [Running(**p) for p in listed]
    return [p for p in pods if proc.is_alive(p.pid) and proc.is_our_service(p.pid)]


def _save(state: StackState, pods: list[Running]) -> None:
    _pods_file(state).write_text(json.dumps([{**p.__dict__, "labels": dict(p.labels)} for p in pods]))


def _balancer(state: StackState) -> LoadBalancer:
    """The Service's stand-in: a real HAProxy on one port for the stack's life (pipelines/targets/local_lb.py).
    Its files live in a short folder of their own: a unix socket's path must fit in 108 bytes (sun_path)."""
    path = state.run_dir / "service.json"
    if path.exists():
        port = int(json.loads(path.read_text())["port"])
    else:
        from pipelines.devtools.embedded_pg import free_port

        port = free_port()
        path.write_text(json.dumps({"port": port}))
    return LoadBalancer(_balancer_dir(state), port)


def _balancer_dir(state: StackState) -> Path:
    key = hashlib.sha256(str(state.run_dir.resolve()).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"modelship-standin-lb-{key}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _start(state: StackState, pod: Pod, say: Any) -> Running:
    from pipelines.devtools.embedded_pg import free_port

    port = free_port()
    rev = state.run_dir / f"rev-{port}"
    mounted = pod.mounts(rev / "fs")
    paths = {IMAGE_MODEL_DIR: pod.artifact_dir(_images_json()), **mounted}
    pod.run_init_containers(_images_json(), mounted)
    env = _database_url(_rewrite({**_BASE_ENV, **pod.env()}, paths), state)
    env["MODELSHIP_DATA_DIR"] = str(rev / "data")
    log_file = state.run_dir / f"{pod.name}.log"
    say(f"    starting a pod of {pod.name} on 127.0.0.1:{port} (model from {paths[IMAGE_MODEL_DIR]})")
    pid = proc.start(port, env, log_file, cwd=REPO_ROOT, command=host_command(pod.command(), port), inherit_env=False)
    (state.run_dir / f"{pid}.pid").write_text(str(pid))
    try:
        proc.wait_ready(f"http://127.0.0.1:{port}", pid, 120.0, log_file, path=pod.ready_path())
    except UpdateFailedError:
        _stop(state, pid)
        raise
    return Running(pod.name, pid, port, pod.template_hash(), pod.labels)


def roll_out(state: StackState, resources: list[mocked_run.Captured], say: Any) -> Served:
    """Make the stack's processes run every Deployment's pod template, behind the Service; return the Service.

    Per Deployment, a changed template starts a new pod, which joins the Service once ready; then the old pod
    is drained and stopped (maxSurge 1, maxUnavailable 0). A Deployment no longer declared is drained and
    stopped. The Service spreads connections over the ready pods it selects, each process weighted by the
    replicas its Deployment has, as kube-proxy's endpoints would be (one process per Deployment keeps the two
    cores free; docs/local-development.md, "HAProxy")."""
    pods = _deployments(resources)
    selector = _service_selector(resources, pods)
    weights = {p.name: min(256, _replicas(resources, p)) for p in pods}
    old = running(state)
    kept = [r for r in old if any(r.deployment == p.name and r.template == p.template_hash() for p in pods)]
    for r in kept:
        say(f"    deployment {r.deployment} unchanged: pod {r.pid} keeps serving on 127.0.0.1:{r.port}")
    started: list[Running] = []
    try:
        for pod in pods:
            if not any(r.deployment == pod.name for r in kept):
                started.append(_start(state, pod, say))
    except UpdateFailedError:
        for r in started:
            _stop(state, r.pid)
        raise
    serving = kept + started
    gone = [r for r in old if r not in kept]
    lb = _balancer(state)

    def servers(up: list[Running], draining: list[Running]) -> list[Server]:
        selected = [r for r in up if _selects(selector, r.labels)]
        return [Server(r.name, r.port, weights[r.deployment]) for r in selected] + [
            Server(r.name, r.port, 0) for r in draining if _selects(selector, r.labels)
        ]

    lb.apply(servers(serving, gone))
    lb.wait_up([s.name for s in servers(serving, []) if s.weight], 60.0)
    _save(state, serving)
    _write_scrape_targets(state, resources, serving)
    if gone:
        say(f"    new pods ready; draining and stopping {', '.join(str(r.pid) for r in gone)}")
        lb.drain([r.name for r in gone], STOP_TIMEOUT_S)
        lb.apply(servers(serving, []))
        for r in gone:
            _stop(state, r.pid)
    return Served(lb.port)


def _write_scrape_targets(state: StackState, resources: list[mocked_run.Captured], pods: list[Running]) -> None:
    """What the Prometheus Operator makes of a declared PodMonitor, as a file_sd file a real Prometheus reads
    (`$MODELSHIP_REHEARSAL_DIR/prometheus/<project>-<stack>.json`): a target per selected pod, its metrics path,
    `job` from `jobLabel`, and each `podTargetLabels` label copied under its sanitised name. prometheus-operator's
    pkg/prometheus/promcfg.go does the same with relabelings of __meta_kubernetes_pod_label_<name> (the names
    sanitised by Prometheus's strutil.SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes `_`)."""
    folder = os.environ.get("MODELSHIP_REHEARSAL_DIR")
    if not folder:
        return
    path = Path(folder) / "prometheus" / f"{state.run_dir.parent.name}-{state.run_dir.name}.json"
    monitors = [unwrapped(r.inputs) for r in resources if r.is_kubernetes_object and r.kind == "PodMonitor"]
    groups = []
    for monitor in monitors:
        spec = monitor.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        endpoint = (spec.get("podMetricsEndpoints") or [{}])[0]
        namespace = str(monitor.get("metadata", {}).get("namespace", ""))
        for pod in pods:
            if not _selects(selector, pod.labels):
                continue
            job = pod.labels.get(str(spec.get("jobLabel", "")), str(monitor["metadata"]["name"]))
            labels = {
                "__metrics_path__": str(endpoint.get("path", "/metrics")),
                "namespace": namespace,
                "pod": pod.name,
                "job": job,
            }
            for name in spec.get("podTargetLabels") or []:
                if name in pod.labels:
                    labels[re.sub(r"[^a-zA-Z0-9_]", "_", name)] = pod.labels[name]
            groups.append({"targets": [f"127.0.0.1:{pod.port}"], "labels": labels})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    tmp.replace(path)  # Prometheus's file_sd reads a whole file, never a half-written one


def _images_json() -> Path | None:
    folder = os.environ.get("MODELSHIP_REHEARSAL_DIR")
    return Path(folder) / "images.json" if folder else None


def _stop(state: StackState, pid: int) -> None:
    proc.stop(pid, STOP_TIMEOUT_S)
    (state.run_dir / f"{pid}.pid").unlink(missing_ok=True)


def tear_down(state: StackState) -> None:
    """Stop the Service, every pod process and the Postgres of the stack."""
    if (state.run_dir / "service.json").exists():
        _balancer(state).stop()
        shutil.rmtree(_balancer_dir(state), ignore_errors=True)
        _write_scrape_targets(state, [], [])
    for pid_file in state.run_dir.glob("*.pid") if state.run_dir.exists() else []:
        _stop(state, int(pid_file.read_text()))
    if (state.run_dir / "pg").exists():
        from pipelines.devtools.embedded_pg import EmbeddedPostgres

        EmbeddedPostgres(state.run_dir / "pg").stop()
    _keep_logs(state)
    shutil.rmtree(state.run_dir, ignore_errors=True)


def _keep_logs(state: StackState) -> None:
    """Keep the pods' and the Postgres's logs past the stack's end (`<backend>/standin-logs/`, beside the
    backend's `.pulumi`, which a destroyed stack leaves without a trace), as a cluster's log collector would: a
    failed rehearsal is read from them."""
    logs = sorted(state.run_dir.glob("*.log")) + sorted(state.run_dir.glob("pg/*.log"))
    if not logs:
        return
    kept = state.root.parent / "standin-logs" / f"{state.project}-{state.name}"
    kept.mkdir(parents=True, exist_ok=True)
    for log in logs:
        shutil.copyfile(log, kept / (f"postgres-{log.name}" if log.parent.name == "pg" else log.name))
