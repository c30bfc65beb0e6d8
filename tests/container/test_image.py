"""The serving image built and run for real (issue 14). Marker `container`; `make container-test`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from packaging.markers import Marker

from model.artifact import sha256_file
from model.train import train
from tests.conftest import SEED_REQUESTS
from tests.container.conftest import (
    CA_BUNDLE,
    DEBIAN_STANDIN,
    DOCKER,
    POSTGRES_STANDIN,
    ROOT,
    RUN_ID,
    Build,
    Image,
    Postgres,
    Running,
    docker,
    free_port,
    make_context,
    wait_for,
)
from tests.loaddriver import drive_in_thread, logged_counts

pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]


def started(service: Running, timeout: float = 90) -> Running:
    assert wait_for(service.ready, timeout), service.logs()
    return service


def refused(service: Running, timeout: float = 60) -> str:
    """The container exits non-zero without ever answering /ready; its logs."""
    assert wait_for(lambda: service.state(".State.Running") == "false", timeout), service.logs()
    assert service.state(".State.ExitCode") != "0"
    return service.logs()


# --- hardening and health ---------------------------------------------------------------------------


def test_runs_non_root_on_a_read_only_root_without_capabilities_and_goes_healthy(image: Image, run_service) -> None:  # type: ignore[no-untyped-def]
    service = started(run_service(image.tag))
    # The image's HEALTHCHECK command; only its interval is shortened (--health-interval) to keep the test short.
    assert wait_for(lambda: service.state(".State.Health.Status") == "healthy", 120), service.logs()
    status = docker("exec", service.name, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.M), status
    assert re.search(r"^CapEff:\s+0+$", status, re.M) and re.search(r"^CapPrm:\s+0+$", status, re.M), status
    root = [line for line in docker("exec", service.name, "cat", "/proc/mounts").stdout.splitlines()
            if line.split()[1] == "/"]  # fmt: skip
    assert root and root[0].split()[3].split(",")[0] == "ro", root
    write = docker("exec", service.name, "python", "-c", "open('/opt/modelship/x', 'w')", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr, write.stderr


# --- serving and the durable log --------------------------------------------------------------------


def test_the_seed_requests_are_answered_and_logged(image: Image, run_service, postgres: Postgres) -> None:  # type: ignore[no-untyped-def]
    service = started(run_service(image.tag))
    ids = []
    for body in SEED_REQUESTS:
        rid = f"seed-{uuid.uuid4().hex}"
        response = httpx.post(service.url + "/predict", json=body, headers={"x-request-id": rid}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == image.manifest["version"]
        ids.append(rid)
    with psycopg.connect(postgres.host_url) as conn:
        rows = conn.execute(
            "SELECT request_id, model_version, inputs FROM predictions WHERE request_id = ANY(%s)", (ids,)
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert {r[1] for r in rows} == {image.manifest["version"]}


def test_docker_stop_under_load_loses_no_acknowledged_record(image: Image, run_service, postgres: Postgres) -> None:  # type: ignore[no-untyped-def]
    service = started(run_service(image.tag))
    under_load = threading.Event()
    thread, box = drive_in_thread(
        service.url, 4000, concurrency=16, prefix="stop-", timeout=10, progress=lambda n: n >= 300 and under_load.set()
    )
    assert under_load.wait(60)
    stop = docker("stop", "-t", "30", service.name)
    thread.join(60)
    result = box[0]
    assert result.acked, result.summary()
    assert stop.returncode == 0 and service.state(".State.ExitCode") == "0", service.logs()
    assert "prediction log flushed" in service.logs()
    counts = logged_counts(postgres.host_url, result.acked)
    missing = [rid for rid in result.acked if counts[rid] != 1]
    assert not missing, f"{len(missing)} acknowledged records not logged exactly once; {result.summary()}"


def test_without_database_url_it_exits_with_one_line(image: Image) -> None:
    done = docker("run", "--rm", "--read-only", "--tmpfs", "/tmp", image.tag, check=False, timeout=60)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1 and "DATABASE_URL is required" in lines[0] and "-e DATABASE_URL=" in lines[0], lines


# --- the model the image serves ---------------------------------------------------------------------


def mounted_artifact(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    for path in [dest, *dest.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def test_a_tampered_model_is_refused(image: Image, house: Path, run_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tampered = mounted_artifact(house, tmp_path / "tampered")
    with (tampered / "model.joblib").open("ab") as f:
        f.write(b"\0")
    logs = refused(run_service(image.tag, "-v", f"{tampered}:/app/model:ro"))
    assert "refusing to load the model" in logs and "sha256" in logs, logs


def test_a_consistently_swapped_model_is_refused(image: Image, house: Path, run_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = train("house-price", tmp_path / "other", seed=7).path
    swapped = mounted_artifact(house, tmp_path / "swapped")
    shutil.copyfile(other / "model.joblib", swapped / "model.joblib")  # content only: the mount stays readable
    manifest = json.loads((swapped / "manifest.json").read_text())
    manifest["artifact"]["sha256"] = sha256_file(swapped / "model.joblib")
    (swapped / "manifest.json").write_text(json.dumps(manifest))
    mount = ["-v", f"{swapped}:/app/model:ro"]
    logs = refused(run_service(image.tag, *mount))
    assert "refusing to load the model" in logs and "allow-list" in logs, logs
    # The control: the same swap with the pin lifted is served, so the pin is what refused it.
    started(run_service(image.tag, *mount, env={"MODELSHIP_ALLOWED_ARTIFACT_SHA256": ""}))


# --- the build --------------------------------------------------------------------------------------


def test_a_build_under_umask_077_serves(image: Image, house: Path, run_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = os.umask(0o077)
    try:
        build = make_context(tmp_path / "ctx", house)
        for path in build.context.rglob("*"):  # what a checkout and a training run under umask 077 leave
            path.chmod(0o700 if path.is_dir() else 0o600)
    finally:
        os.umask(old)
    tag = f"{RUN_ID}:umask077"
    done, _ = build.build(tag)
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        service = started(run_service(tag))
        response = httpx.post(service.url + "/predict", json=SEED_REQUESTS[0], timeout=10)
        assert response.status_code == 200, response.text
    finally:
        docker("image", "rm", "-f", tag, check=False)


def test_a_base_without_cpython_in_usr_local_fails_the_build(image: Image, context: Build) -> None:
    done, _ = context.build(f"{RUN_ID}:wrong-base", BASE_IMAGE=DEBIAN_STANDIN)
    assert done.returncode != 0
    assert "service.buildcheck" in done.stderr and "no such file or directory" in done.stderr, done.stderr[-2000:]


def test_labels_are_complete_and_agree_with_the_manifest(image: Image) -> None:
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image.tag).stdout)
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert labels["org.opencontainers.image.version"] == image.manifest["version"]
    assert labels["dev.modelship.model.version"] == image.manifest["version"]
    assert labels["dev.modelship.model.sha256"] == image.manifest["artifact"]["sha256"]  # type: ignore[index]
    assert labels["org.opencontainers.image.revision"] == revision.stdout.strip()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", labels["org.opencontainers.image.created"])
    assert "org.opencontainers.image.source" in labels
    env = json.loads(docker("image", "inspect", "-f", "{{json .Config.Env}}", image.tag).stdout)
    assert f"MODELSHIP_ALLOWED_ARTIFACT_SHA256={image.manifest['artifact']['sha256']}" in env  # type: ignore[index]


def test_a_pyproject_edit_that_keeps_the_pins_reuses_the_dependency_layer(
    image: Image, house: Path, tmp_path: Path
) -> None:
    build = make_context(tmp_path / "ctx", house)
    pyproject = build.context / "pyproject.toml"
    # A setting no runtime pin depends on, unique per session so an earlier session's cache cannot answer.
    pyproject.write_text(pyproject.read_text().replace("line-length = 120", f"line-length = 120  # {RUN_ID}"))
    tag = f"{RUN_ID}:pyproject-edit"
    done, _ = build.build(tag)
    try:
        assert done.returncode == 0, done.stderr[-2000:]
        steps = re.findall(r"^(#\d+) \[(\w+) [^\]]*\] (RUN|COPY)[^\n]*$", done.stderr, re.M)
        cached = set(re.findall(r"^(#\d+) CACHED$", done.stderr, re.M))
        stage_of = {number: stage for number, stage, _ in steps}
        assert any(stage == "lock" and number not in cached for number, stage in stage_of.items()), done.stderr
        deps = [number for number, stage in stage_of.items() if stage == "deps"]
        assert deps and all(number in cached for number in deps), done.stderr
    finally:
        docker("image", "rm", "-f", tag, check=False)


def test_a_contradicting_model_version_fails_the_build(image: Image, context: Build) -> None:
    done, _ = context.build(f"{RUN_ID}:liar", MODEL_VERSION="local")
    assert done.returncode != 0
    assert "MODEL_VERSION=local contradicts the manifest" in done.stderr, done.stderr[-2000:]


def lock_packages() -> dict[str, str]:
    """name -> version of the runtime packages uv.lock pins for this platform (markers evaluated)."""
    uv = ROOT / ".venv" / "bin" / "uv"
    exported = subprocess.run(
        [str(uv), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--format", "requirements-txt"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = {}
    for line in exported.splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, version = requirement.strip().split("==")
        found[normalize(name)] = version
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_holds_exactly_the_locked_packages_and_no_build_tools(image: Image) -> None:
    script = (
        "import importlib.metadata as m, json, pathlib; "
        "print(json.dumps({'dists': {d.metadata['Name']: d.version for d in m.distributions()}, "
        "'tests': [str(p) for p in pathlib.Path('/opt/venv').rglob('tests') if p.is_dir()]}))"
    )
    done = docker("run", "--rm", "--entrypoint", "/opt/venv/bin/python", image.tag, "-c", script)
    seen = json.loads(done.stdout)
    assert {normalize(k): v for k, v in seen["dists"].items()} == lock_packages()
    assert not seen["tests"]


def test_build_secrets_never_reach_the_image(image: Image, tmp_path: Path) -> None:
    # The secrets are mounted in the lock and deps stages only; nothing of them reaches the runtime image.
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image.tag).stdout
    assert "ca_bundle" not in history and "pip_conf" not in history
    config = docker("image", "inspect", "-f", "{{json .Config.Env}}", image.tag).stdout
    assert "PIP_CERT" not in config and "PIP_CONFIG_FILE" not in config
    # No byte of the certificates this machine's proxy added is in any file of the image.
    host = set(re.findall(r"-----BEGIN CERTIFICATE-----\n(.{64})", CA_BUNDLE.read_text()))
    name = f"{RUN_ID}-export"
    docker("create", "--name", name, image.tag)
    try:
        bundle = docker("run", "--rm", "--entrypoint", "cat", image.tag, "/etc/ssl/certs/ca-certificates.crt").stdout
        proxy_only = {line for line in host if line not in bundle}
        export = subprocess.Popen([DOCKER, "export", name], stdout=subprocess.PIPE)
        assert export.stdout is not None
        with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
            for member in tar:
                if member.isfile() and member.size < 4_000_000 and member.name != "etc/ssl/certs/ca-certificates.crt":
                    data = tar.extractfile(member)
                    text = data.read().decode("latin-1") if data else ""
                    assert not any(line in text for line in proxy_only), member.name
                    assert not member.name.startswith("run/secrets/"), member.name
        export.wait()
    finally:
        docker("rm", "-f", name, check=False)


# --- compose ----------------------------------------------------------------------------------------


def test_docker_compose_up_serves_and_logs(image: Image, tmp_path: Path) -> None:
    # Compose v2 when the plugin is there, else Debian's docker-compose 1.29 (make docker-engine installs it).
    v2 = subprocess.run([DOCKER, "compose", "version"], capture_output=True, check=False).returncode == 0
    compose = [DOCKER, "compose"] if v2 else [shutil.which("docker-compose") or "docker-compose"]
    project = f"{RUN_ID}-compose".replace(":", "")
    port = free_port()
    env = {**os.environ, **{k: v for k, v in image.build_args.items() if k != "PYTHON_IMAGE"},
           "IMAGE": image.tag, "POSTGRES_IMAGE": POSTGRES_STANDIN, "PORT": str(port)}  # fmt: skip
    argv = [*compose, "-p", project, "-f", str(ROOT / "docker-compose.yml")]
    try:
        up = subprocess.run([*argv, "up", "-d", "--no-build"], env=env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{port}"
        container = subprocess.run([*argv, "ps", "-q", "modelship"], env=env, capture_output=True, text=True)
        running = Running(container.stdout.strip(), url)
        assert wait_for(running.ready, 180), running.logs()
        rid = f"compose-{uuid.uuid4().hex}"
        response = httpx.post(url + "/predict", json=SEED_REQUESTS[0], headers={"x-request-id": rid}, timeout=10)
        assert response.status_code == 200, response.text
        query = f"SELECT count(*) FROM predictions WHERE request_id = '{rid}'"
        logged = subprocess.run(
            [*argv, "exec", "-T", "postgres", "psql", "-U", "modelship", "-d", "modelship", "-Atc", query],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert logged.stdout.strip() == "1", logged.stdout + logged.stderr
    finally:
        subprocess.run([*argv, "down", "-v", "-t", "30"], env=env, capture_output=True, timeout=300)
