"""The local target: each stack is HAProxy (its Service) in front of background uvicorns, and an embedded Postgres.

State of stack S lives in `<state_dir>/stacks/S/`: `config.json` (like Pulumi.S.yaml),
`history.json` (the `pulumi stack history --json` shape, newest first), `annotations.json`,
`outputs.json`, `pods.json` (the service processes: track, version, port, pid), `service.log` and
`canary.log`, HAProxy's `haproxy.cfg`, the Postgres data in `pg/` and each process's spool in `pods/<name>/`.

A stack with `canary.weight` above 0 runs a canary process next to the stable one, serving the canary
artifact and logging to the same Postgres; HAProxy's server weights split connections between them
(pipelines/targets/local_lb.py). An update starts what is new, waits for it to be ready, puts it behind
HAProxy, drains what it replaces and only then stops that: changing the set fails no request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra import contract
from pipelines.errors import ConfigError, StackBusyError, UnknownStackError, UpdateFailedError
from pipelines.report import git_head
from pipelines.settings import REPO_ROOT, PipelineSettings
from pipelines.targets import local_process as proc
from pipelines.targets.base import (
    ARTIFACT_DIR_KEY,
    CANARY_ARTIFACT_DIR_KEY,
    CANARY_IMAGE_REF_KEY,
    CANARY_MODEL_VERSION_KEY,
    CANARY_WEIGHT_KEY,
    IMAGE_REF_KEY,
    MODEL_VERSION_KEY,
    OUTPUT_CANARY_IMAGE_REF,
    OUTPUT_CANARY_MODEL_VERSION,
    OUTPUT_CANARY_WEIGHT,
    OUTPUT_EXTERNAL_ADDRESS,
    OUTPUT_IMAGE_REF,
    OUTPUT_MODEL_VERSION,
    OUTPUT_NAMESPACE,
    OUTPUT_URL,
    OnOutput,
    Update,
    UpOutcome,
    update_from_json,
    update_to_json,
)
from pipelines.targets.local_lb import LoadBalancer, Server

log = logging.getLogger(__name__)
STABLE, CANARY = "stable", "canary"  # the pods' track label in the cluster (infra/components/routing.py)
LOGS = {STABLE: "service.log", CANARY: "canary.log"}


def local_port(stack: str, overrides: Mapping[str, int]) -> int:
    """dev/staging/prod have fixed ports; pr-<n> stacks 8200+n; anything else a stable hash in 8700-8899."""
    if stack in overrides:
        return overrides[stack]
    if stack.startswith("pr-") and stack[3:].isdigit():
        return 8200 + int(stack[3:]) % 500
    return 8700 + zlib.crc32(stack.encode()) % 200


def no_release_yet(stack: str, port: int) -> str:
    """Why a local stack is not there, and how it differs from `make up` (which people confuse with it)."""
    return (
        f"local stack {stack} has no deployment yet (it would serve on :{port}); `make up` serves outside the "
        f"stacks, so its :8000 is not {stack}: deploy one with `python -m pipelines release --stack {stack}`"
    )


def shadow_env(config: Mapping[str, str]) -> dict[str, str]:
    """The challenger the stack's shadow.* keys name, as the service's settings (docs/shadow.md); none when off."""
    artifact = config.get(contract.full_key(contract.SHADOW_ARTIFACT_DIR), "")
    sample = config.get(contract.full_key(contract.SHADOW_SAMPLE), "0") or "0"
    if not artifact or float(sample) <= 0:
        return {}
    return {"MODELSHIP_SHADOW_MODEL_DIR": str(REPO_ROOT / artifact), "MODELSHIP_SHADOW_SAMPLE": sample}


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)  # atomic: a concurrent reader sees the old or the new file, never half of one


class LocalStack:
    def __init__(self, name: str, root: Path, port: int, settings: PipelineSettings) -> None:
        self._name = name
        self.root = root
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.settings = settings

    @property
    def name(self) -> str:
        return self._name

    # -- protocol ---------------------------------------------------------------------------
    def set_config(self, values: Mapping[str, str], *, secret: bool = False) -> None:
        if secret:
            # The local service runs without API keys; a secret would only end up in history.json in clear.
            raise ConfigError("the local target takes no secret config (it runs without auth)")
        self._write("config.json", {**self.config(), **values})

    def config(self) -> dict[str, str]:
        return dict(_read_json(self.root / "config.json", {}))

    def get_config(self, key: str) -> str | None:
        return self.config().get(key)

    def up(self, message: str, on_output: OnOutput | None = None) -> UpOutcome:
        say = on_output or (lambda line: None)
        with self._lock():
            start = datetime.now(UTC)
            config = self.config()
            try:
                changes = self._deploy(config, say)
            except UpdateFailedError as exc:
                number = self._record(start, "failed", message, config, {"replace": 1})
                raise UpdateFailedError(f"local update #{number} of {self.name} failed: {exc}", number) from exc
            number = self._record(start, "succeeded", message, config, changes)
            outputs = self._outputs_for(config)
            self._write("outputs.json", outputs)
            say(f"update #{number} of {self.name} succeeded: {outputs[OUTPUT_URL]}")
            return UpOutcome(update=number, outputs=outputs)

    def history(self) -> list[Update]:
        annotations = _read_json(self.root / "annotations.json", {})
        entries = _read_json(self.root / "history.json", [])
        return [update_from_json(e, annotations.get(str(e["version"]))) for e in entries]

    def outputs(self) -> dict[str, Any]:
        return dict(_read_json(self.root / "outputs.json", {}))

    def annotate(self, update: int, key: str, value: str) -> None:
        annotations = _read_json(self.root / "annotations.json", {})
        annotations.setdefault(str(update), {})[key] = value
        self._write("annotations.json", annotations)

    def destroy(self, on_output: OnOutput | None = None) -> None:
        with self._lock():
            self.stop()
            self._postgres().stop()
        shutil.rmtree(self.root)
        (on_output or (lambda line: None))(f"stack {self.name} destroyed and removed")

    # -- local specifics --------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the stack's HAProxy and service processes, if they run."""
        self._lb().stop()
        for pod in self._pods():
            proc.stop(pod["pid"], self.settings.stop_timeout_s)
        self._write("pods.json", [])
        self._stop_single_process()

    def _stop_single_process(self) -> None:
        # A stack deployed before HAProxy fronted it: one uvicorn on the stack's own port.
        pid_file = self.root / "service.pid"
        if pid_file.exists():
            proc.stop(int(pid_file.read_text()), self.settings.stop_timeout_s)
            pid_file.unlink()

    def database_url(self) -> str:
        """The URL of the stack's embedded Postgres (its prediction log), started if it was stopped.

        The pulumi target's counterpart is the `databaseUrl` output; a local stack keeps it out of outputs.json
        because the port is only known while the server runs."""
        pg = self._postgres()
        if not (pg.pgdata / "PG_VERSION").exists():
            raise ConfigError(no_release_yet(self.name, self.port))
        try:
            return str(pg.start())
        except RuntimeError as exc:  # EmbeddedPostgresError
            first = str(exc).splitlines()[0]
            raise ConfigError(f"the embedded Postgres of local stack {self.name} did not start: {first}") from exc

    def _deploy(self, config: Mapping[str, str], say: OnOutput) -> dict[str, int]:
        wanted = {STABLE: (self._artifact(config, ARTIFACT_DIR_KEY), config.get(MODEL_VERSION_KEY, ""))}
        weight = canary_weight(config)
        if weight:
            wanted[CANARY] = (self._artifact(config, CANARY_ARTIFACT_DIR_KEY), config.get(CANARY_MODEL_VERSION_KEY, ""))
        lb = self._lb()
        pods = [p for p in self._pods() if proc.is_alive(p["pid"])]
        self._stop_single_process()
        if lb.pid() is None and proc.port_in_use(self.port):
            raise UpdateFailedError(
                f"port {self.port} is taken by a process this stack did not start; stop it or map "
                f"{self.name} to another port with MODELSHIP_PIPELINE_LOCAL_PORTS"
            )
        say(f"starting Postgres for {self.name}")
        try:
            database_url = self._postgres().start()
        except RuntimeError as exc:  # EmbeddedPostgresError: initdb/pg_ctl failed, the log tail says why
            raise UpdateFailedError(f"the embedded Postgres did not start: {exc}") from exc
        extra = {STABLE: shadow_env(config)}  # the shadow's challenger runs beside the stable model (docs/shadow.md)
        kept = [p for p in pods if p["track"] in wanted and p["artifact"] == wanted[p["track"]][0]
                and p.get("env", {}) == extra.get(p["track"], {})]  # fmt: skip
        old = [p for p in pods if p not in kept]
        new = [
            self._start_pod(track, artifact, version, database_url, say, extra.get(track, {}))
            for track, (artifact, version) in wanted.items()
            if not any(p["track"] == track for p in kept)
        ]
        serving = kept + new
        weights = {STABLE: 100 - weight, CANARY: weight}  # percent-pods: see docs/local-development.md
        lb.apply([*_servers(serving, weights), *_servers(old, {STABLE: 100 - weight, CANARY: 0})])
        lb.wait_up([p["name"] for p in serving], self.settings.ready_timeout_s)
        self._write("pods.json", serving)
        if old:
            say(f"draining {', '.join(p['name'] for p in old)}")
            lb.drain([p["name"] for p in old], self.settings.stop_timeout_s)
            lb.apply(_servers(serving, weights))
            for pod in old:
                proc.stop(pod["pid"], self.settings.stop_timeout_s)
        changes = {"create": len(new), "delete": len(old), "same": len(kept)}
        return {kind: n for kind, n in changes.items() if n}

    def _artifact(self, config: Mapping[str, str], key: str) -> str:
        configured = config.get(key)
        artifact = str(REPO_ROOT / configured) if configured else ""  # an absolute value stays as it is
        if not configured or not (Path(artifact) / "manifest.json").is_file():
            raise UpdateFailedError(f"config {key}={configured!r} is not an artifact folder")
        return artifact

    def _start_pod(
        self, track: str, artifact: str, version: str, database_url: str, say: OnOutput, extra: Mapping[str, str]
    ) -> dict[str, Any]:
        """One service process of TRACK on a free port, ready; stopped again if it does not get ready."""
        port = _free_port()
        name = f"{track}-{port}"
        say(f"starting the {track} service with {version} on :{port}")
        data_dir = self.root / "pods" / name  # a pod's own spool, as its emptyDir is in the cluster
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {"MODELSHIP_MODEL_DIR": artifact, "DATABASE_URL": database_url, "MODELSHIP_DATA_DIR": str(data_dir),
               **extra}  # fmt: skip
        log_file = self.root / LOGS[track]
        pid = proc.start(port, env, log_file, cwd=REPO_ROOT)
        try:
            proc.wait_ready(f"http://127.0.0.1:{port}", pid, self.settings.ready_timeout_s, log_file)
        except UpdateFailedError:
            proc.stop(pid, self.settings.stop_timeout_s)
            raise
        return {
            "name": name,
            "track": track,
            "version": version,
            "artifact": artifact,
            "port": port,
            "pid": pid,
            "env": dict(extra),
        }

    def _pods(self) -> list[dict[str, Any]]:
        return list(_read_json(self.root / "pods.json", []))

    def arm_metrics_urls(self) -> dict[str, list[str]]:
        """Each track's processes' /metrics (stable, canary), where the canary driver counts each arm's 5xx."""
        arms: dict[str, list[str]] = {"stable": [], "canary": []}
        for pod in self._pods():
            arms.setdefault(pod["track"], []).append(f"http://127.0.0.1:{pod['port']}/metrics")
        return arms

    def _lb(self) -> LoadBalancer:
        return LoadBalancer(self.root, self.port)

    def _postgres(self) -> Any:
        from pipelines.devtools.embedded_pg import EmbeddedPostgres  # pgserver: a dev dependency

        return EmbeddedPostgres(self.root / "pg")

    def _outputs_for(self, config: Mapping[str, str]) -> dict[str, Any]:
        outputs: dict[str, Any] = {
            OUTPUT_URL: self.url,
            OUTPUT_EXTERNAL_ADDRESS: f"127.0.0.1:{self.port}",
            OUTPUT_MODEL_VERSION: config.get(MODEL_VERSION_KEY),
            OUTPUT_IMAGE_REF: config.get(IMAGE_REF_KEY),
            OUTPUT_NAMESPACE: f"local-{self.name}",
        }
        if weight := canary_weight(config):  # exported only while a canary runs, as infra does
            outputs[OUTPUT_CANARY_MODEL_VERSION] = config.get(CANARY_MODEL_VERSION_KEY)
            outputs[OUTPUT_CANARY_IMAGE_REF] = config.get(CANARY_IMAGE_REF_KEY)
            outputs[OUTPUT_CANARY_WEIGHT] = float(weight)
        return outputs

    def _record(
        self, start: datetime, result: str, message: str, config: Mapping[str, str], changes: Mapping[str, int]
    ) -> int:
        entries = _read_json(self.root / "history.json", [])
        number = max((e["version"] for e in entries), default=0) + 1
        environment = {"exec.kind": "modelship.local"}
        if head := git_head():
            environment["git.head"] = head
        update = Update(
            number=number,
            kind="update",
            result=result,
            start_time=start,
            end_time=datetime.now(UTC),
            message=message,
            config=dict(config),
            environment=environment,
        )
        entry = update_to_json(update) | {"resourceChanges": dict(changes)}
        self._write("history.json", [entry, *entries])
        return number

    def _write(self, name: str, data: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.root / name, data)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".update.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StackBusyError(
                    f"another update is running on local stack {self.name}; wait for it to finish "
                    "and run this again (nothing was changed)"
                ) from None
            yield
        finally:
            os.close(fd)


def canary_weight(config: Mapping[str, str]) -> int:
    """canary.weight as a percent (0 when unset); UpdateFailedError when it is not one."""
    text = config.get(CANARY_WEIGHT_KEY, "0")
    try:
        weight = int(text)
    except ValueError:
        raise UpdateFailedError(f"config {CANARY_WEIGHT_KEY}={text!r} is not a whole percent") from None
    if not 0 <= weight <= 100:
        raise UpdateFailedError(f"config {CANARY_WEIGHT_KEY}={weight} is outside 0..100")
    return weight


def _servers(pods: list[dict[str, Any]], weights: Mapping[str, int]) -> list[Server]:
    return [Server(p["name"], p["port"], weights[p["track"]]) for p in pods]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalTarget:
    kind = "local"

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self.stacks_dir = Path(settings.state_dir).absolute() / "stacks"

    def select(self, stack: str, *, create: bool = False) -> LocalStack:
        if not stack or "/" in stack or stack.startswith("."):
            raise ConfigError(f"invalid stack name {stack!r}")
        root = self.stacks_dir / stack
        if not create and not root.exists():
            raise UnknownStackError(no_release_yet(stack, local_port(stack, self.settings.local_ports)))
        root.mkdir(parents=True, exist_ok=True)
        return LocalStack(stack, root, local_port(stack, self.settings.local_ports), self.settings)
