"""The environment that makes `pulumi` mean the stand-in, and the clean-up of what it started.

    env = standin_env(tmp_path)          # PATH, PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, MODELSHIP_REHEARSAL_DIR
    subprocess.run([...], env={**os.environ, **env})
    kill_all(env)                        # every service process and Postgres the stand-in started

Used by the rehearsal without act (test_rehearsal.py) and by the act rehearsal, which runs the workflows with
this env. `record_image` is what the build-push stand-in does: a deterministic digest per artifact, recorded in
`$MODELSHIP_REHEARSAL_DIR/images.json` as {"sha256:<hex>": "<abs artifact dir>"} for the stand-in to run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

BIN = Path(__file__).resolve().parent / "standin_pulumi" / "bin"
PASSPHRASE = "modelship-rehearsal-stand-in"  # the stand-in backend's passphrase, test-only
REGISTRY = "registry.rehearsal.invalid/modelship"


def standin_env(root: Path) -> dict[str, str]:
    """Env for a rehearsal whose state lives under ROOT (backend, images.json, artifacts of a run)."""
    backend, rehearsal = root / "pulumi-backend", root / "rehearsal"
    backend.mkdir(parents=True, exist_ok=True)
    rehearsal.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "MODELSHIP_REHEARSAL_DIR": str(rehearsal),
    }


def artifact_digest(artifact: Path) -> str:
    """sha256 over the artifact's files (names and bytes): the same artifact, the same digest."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(artifact).rglob("*") if p.is_file()):
        digest.update(path.relative_to(artifact).as_posix().encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def record_image(env: Mapping[str, str], artifact: Path, repository: str = REGISTRY) -> str:
    """Record ARTIFACT as a built image; return its `repo@sha256:` reference."""
    images = Path(env["MODELSHIP_REHEARSAL_DIR"]) / "images.json"
    digest = artifact_digest(artifact)
    with (images.parent / ".images.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two build jobs may record at once
        known = json.loads(images.read_text()) if images.exists() else {}
        known[digest] = str(Path(artifact).absolute())
        images.write_text(json.dumps(known, indent=2) + "\n")
    return f"{repository}@{digest}"


def kill_all(env: Mapping[str, str]) -> list[str]:
    """Stop every service process and Postgres the stand-in started for this backend; return the stacks."""
    from tests.rehearsal.standin_pulumi import apply
    from tests.rehearsal.standin_pulumi.state import StackState

    root = Path(env["PULUMI_BACKEND_URL"][len("file://") :]) / ".pulumi"
    stopped = []
    for run_dir in sorted((root / "standin-run").glob("*/*")):
        apply.tear_down(StackState(run_dir.parent.name, run_dir.name, root))
        stopped.append(run_dir.name)
    return stopped


def leftovers(env: Mapping[str, str]) -> list[int]:
    """Pids of processes still running out of this backend (Postgres by its -D, services by their env)."""
    backend = env["PULUMI_BACKEND_URL"][len("file://") :].encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if backend in (proc / "cmdline").read_bytes() or backend in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return [pid for pid in found if pid != os.getpid()]


def store_backup_credentials(env: Mapping[str, str], stack: str = "prod") -> None:
    """The platform team's one-time step for a stack with backups on (Pulumi.prod.yaml says so): the object
    store's credentials go in as stack secrets. The real CLI writes them encrypted to Pulumi.<stack>.yaml, which
    the team commits; the stand-in keeps CLI-set config in its backend, so this runs once per rehearsal."""

    def pulumi(*args: str) -> subprocess.CompletedProcess[str]:
        repo = Path(__file__).resolve().parents[2]
        return subprocess.run(
            ["pulumi", *args, "--non-interactive"], env={**os.environ, **env}, cwd=repo, capture_output=True, text=True
        )

    init = pulumi("stack", "init", stack)
    assert init.returncode == 0 or "already exists" in init.stderr, init.stderr
    for key, value in (("db.backup.accessKeyId", "rehearsal-access-key"), ("db.backup.secretAccessKey", "s3cret")):
        done = pulumi("config", "set", "--secret", key, value, "--stack", stack)
        assert done.returncode == 0, done.stderr
