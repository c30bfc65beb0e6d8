"""The stand-in actions' logic: one function per third-party action, called from its composite action.yml.

Each real action's behaviour is read from its source at the SHA the workflows pin (cited per function).
State of one rehearsal lives under $MODELSHIP_REHEARSAL_DIR:
  runs/<run id>/artifacts/<name>/  what upload-artifact stored (download-artifact reads it, also by run-id)
  images/<hex>/artifact/           the artifact folder a build-push digest was computed from
  images.json                      {"sha256:<hex>": "<abs artifact dir>"}, read by the stand-in Pulumi CLI
  comments/<pr>/<n>.md             the PR comments github-script and pulumi/actions would post
  runs.json                        the workflow runs so far (listWorkflowRuns of the github-script stand-in)
Inputs arrive as INPUT_<NAME> environment variables, as the Actions runner passes them to node actions.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
STANDIN_PULUMI_BIN = HERE.parent / "standin_pulumi" / "bin"


def _input(name: str, default: str = "") -> str:
    return os.environ.get(f"INPUT_{name.upper().replace('-', '_')}", default).strip()


def _state() -> Path:
    return Path(os.environ["MODELSHIP_REHEARSAL_DIR"])


def _workspace() -> Path:
    return Path(os.environ["GITHUB_WORKSPACE"])


def _append(variable: str, line: str) -> None:
    with open(os.environ[variable], "a") as handle:
        handle.write(line + "\n")


def _output(name: str, value: str) -> None:
    _append("GITHUB_OUTPUT", f"{name}={value}")


def _fail(message: str) -> int:
    print(f"::error::stand-in: {message}")
    return 1


def setup_python() -> int:
    """actions/setup-python: the requested CPython first on PATH (here: the host's, if its minor matches)."""
    wanted = _input("python-version")
    found = shutil.which(f"python{wanted}") if wanted else shutil.which("python3")
    if not found:
        return _fail(f"no python{wanted} on this machine")
    version = subprocess.run([found, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True)
    actual = version.stdout.strip()
    if wanted and not actual.startswith(wanted + "."):
        return _fail(f"python-version {wanted} requested, {found} is {actual}")
    shim = Path(os.environ["RUNNER_TEMP"]) / "standin-python"
    shim.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        link = shim / name
        if not link.exists():
            link.symlink_to(found)
    _append("GITHUB_PATH", str(shim))
    _output("python-version", actual)
    _output("python-path", found)
    print(f"stand-in setup-python: {found} ({actual})")
    return 0


def _artifact_root(run_id: str, name: str) -> Path:
    return _state() / "runs" / run_id / "artifacts" / name


def _common_root(paths: list[Path]) -> Path:
    # upload-artifact v4 (src/shared/upload/path-and-artifact-name-validation... search.ts): the least
    # common ancestor of all matched paths is the artifact's root.
    if len(paths) == 1:
        return paths[0] if paths[0].is_dir() else paths[0].parent
    return Path(os.path.commonpath([str(p) for p in paths]))


def upload_artifact() -> int:
    """actions/upload-artifact v4: store the matched files under the artifact name, once per run."""
    name = _input("name", "artifact")
    wanted = [line.strip() for line in _input("path").splitlines() if line.strip()]
    paths = [(_workspace() / p).resolve() for p in wanted]
    present = [p for p in paths if p.exists()]
    if not present:
        behaviour = _input("if-no-files-found", "warn")
        message = f"no files found at {wanted} for artifact {name}"
        if behaviour == "error":
            return _fail(message)
        print(f"::warning::stand-in: {message}" if behaviour == "warn" else message)
        return 0
    target = _artifact_root(os.environ["GITHUB_RUN_ID"], name)
    if target.exists():  # v4 artifacts are immutable: a second upload of one name in a run fails
        return _fail(f"an artifact named {name} already exists in run {os.environ['GITHUB_RUN_ID']}")
    root = _common_root(present)
    for path in present:
        destination = target / path.relative_to(root)
        if path.is_dir():
            shutil.copytree(path, destination, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    print(f"stand-in upload-artifact: {name} <- {', '.join(wanted)} ({target})")
    _output("artifact-id", hashlib.sha256(str(target).encode()).hexdigest()[:12])
    return 0


def download_artifact() -> int:
    """actions/download-artifact v4: one named artifact into `path`, from this run or from `run-id`."""
    name = _input("name")
    run_id = _input("run-id") or os.environ["GITHUB_RUN_ID"]
    if _input("run-id") and not _input("github-token"):
        return _fail("run-id needs github-token (download-artifact v4 reads other runs through the API)")
    source = _artifact_root(run_id, name)
    if not source.is_dir():
        return _fail(f"artifact {name} not found in run {run_id}")
    destination = _workspace() / (_input("path") or ".")
    shutil.copytree(source, destination, dirs_exist_ok=True)
    print(f"stand-in download-artifact: {name} of run {run_id} -> {destination}")
    _output("download-path", str(destination))
    return 0


def setup_buildx() -> int:
    """docker/setup-buildx-action: nothing to set up, no image is built by the stand-in build-push."""
    _output("name", "stand-in-builder")
    _output("driver", "stand-in")
    return 0


def login() -> int:
    """docker/login-action: checks that the workflow passes what a registry login needs."""
    missing = [key for key in ("registry", "username", "password") if not _input(key)]
    if missing:
        return _fail(f"login-action without {', '.join(missing)}")
    print(f"stand-in login: {_input('username')} at {_input('registry')}")
    return 0


def _dockerfile_args(dockerfile: Path) -> set[str]:
    return set(re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)", dockerfile.read_text(), re.M))


def _build_args(text: str) -> dict[str, str]:
    pairs = [line.strip().split("=", 1) for line in text.splitlines() if line.strip()]
    return {key: value for key, value in pairs}


def artifact_digest(folder: Path) -> str:
    """A deterministic digest of an artifact folder: its relative file names and their bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"sha256:{digest.hexdigest()}"


def _check_build(context: Path, args: dict[str, str]) -> str | None:
    declared = _dockerfile_args(context / "Dockerfile")
    if unknown := set(args) - declared:
        return f"build-args {sorted(unknown)} are not ARGs of the Dockerfile ({sorted(declared)})"
    for required in ("MODEL_DIR", "MODEL_VERSION"):
        if not args.get(required):
            return f"build-arg {required} is required by the Dockerfile's COPY/labels and is empty"
    manifest = context / args["MODEL_DIR"] / "manifest.json"
    if not manifest.is_file():
        return f"MODEL_DIR={args['MODEL_DIR']} has no manifest.json in the build context {context}"
    version = json.loads(manifest.read_text()).get("version")
    if version != args["MODEL_VERSION"]:
        return f"MODEL_VERSION={args['MODEL_VERSION']} but {manifest} is version {version}"
    return None


def _record_image(digest: str, artifact: Path) -> Path:
    stored = _state() / "images" / digest.split(":", 1)[1] / "artifact"
    if not stored.exists():
        shutil.copytree(artifact, stored)
    record = _state() / "images.json"
    with (_state() / ".images.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the lock tests/rehearsal/standin_env.py takes too
        images = json.loads(record.read_text()) if record.exists() else {}
        images[digest] = str(stored)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(images, indent=2, sort_keys=True))
        tmp.replace(record)
    return stored


def build_push() -> int:
    """docker/build-push-action: builds nothing; checks the inputs and records digest -> artifact."""
    context = (_workspace() / (_input("context") or ".")).resolve()
    args = _build_args(_input("build-args"))
    if problem := _check_build(context, args):
        return _fail(problem)
    artifact = context / args["MODEL_DIR"]
    digest = artifact_digest(artifact)
    stored = _record_image(digest, artifact)
    print(f"stand-in build-push: {_input('tags')} = {digest} (artifact {stored}); push={_input('push')}")
    _output("digest", digest)
    _output("imageid", digest)
    _output("metadata", json.dumps({"containerimage.digest": digest}))
    return 0


def auth_actions() -> int:
    """pulumi/auth-actions: an OIDC exchange yields a token naming its org, type and scope."""
    organization = _input("organization")
    if not organization:
        return _fail("pulumi/auth-actions needs `organization`")
    kind = _input("requested-token-type").rsplit(":", 1)[-1] or "organization"
    token = f"stand-in-oidc:{organization}:{kind}:{_input('scope') or '-'}"
    print(f"::add-mask::{token}")
    _output("pulumi-access-token", token)
    if _input("export-environment-variables", "true") == "true":
        _append("GITHUB_ENV", f"PULUMI_ACCESS_TOKEN={token}")
    return 0


def _comment_file(pr: int) -> Path:
    folder = _state() / "comments" / str(pr)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{len(list(folder.glob('*.md'))) + 1:02d}.md"


def pulumi() -> int:
    """pulumi/actions v7 (src/main.ts): no `command` installs the CLI only; else runs it on the stack."""
    _append("GITHUB_PATH", str(STANDIN_PULUMI_BIN))
    command = _input("command")
    if not command:
        print(f"stand-in pulumi/actions: CLI on PATH ({STANDIN_PULUMI_BIN})")
        return 0
    if command != "preview":
        return _fail(f"command {command} is not used by the workflows and not implemented by the stand-in")
    return _preview()


def _preview() -> int:
    from pulumi import automation as auto  # the real Automation API, driving the stand-in CLI

    os.environ["PATH"] = f"{STANDIN_PULUMI_BIN}{os.pathsep}{os.environ['PATH']}"
    work_dir = (_workspace() / (_input("work-dir") or "./")).resolve()
    stack_name = _input("stack-name")
    packs = [str((_workspace() / p).resolve()) for p in _input("policyPacks").splitlines() if p.strip()]
    stack = auto.select_stack(stack_name=stack_name, work_dir=str(work_dir))
    try:
        result = stack.preview(policy_packs=packs or None, color="never")
    except auto.errors.CommandError as exc:
        return _fail(f"pulumi preview on {stack_name} failed: {exc}")
    print(result.stdout)
    _output("output", json.dumps(result.stdout))
    if _input("comment-on-pr") == "true":
        _pr_comment(stack, command="preview", stack_name=stack_name, stdout=result.stdout)
    return 0


def _pr_comment(stack: object, command: str, stack_name: str, stdout: str) -> None:
    # The body of src/libs/pr.ts handlePullRequestMessage: heading, a <details> summary, the output.
    event = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text())
    number = event.get("pull_request", {}).get("number")
    if not number:
        return
    project = stack.workspace.project_settings().name  # type: ignore[attr-defined]
    body = (
        f"#### :tropical_drink: `{command}` on {project}/{stack_name}\n\n"
        f"<details>\n<summary>Pulumi report</summary>\n\n<pre>\n{stdout}\n</pre>\n</details>\n"
    )
    path = _comment_file(int(number))
    path.write_text(body)
    print(f"stand-in pulumi/actions: PR #{number} comment -> {path}")


def github_script() -> int:
    """actions/github-script v7: runs the script with node, as an async function of (github, context, core)."""
    runner = HERE / "github_script.js"
    result = subprocess.run(["node", str(runner)], check=False)
    return result.returncode


ACTIONS: dict[str, Callable[[], int]] = {
    "setup-python": setup_python,
    "upload-artifact": upload_artifact,
    "download-artifact": download_artifact,
    "setup-buildx": setup_buildx,
    "login": login,
    "build-push": build_push,
    "auth-actions": auth_actions,
    "pulumi": pulumi,
    "github-script": github_script,
}


if __name__ == "__main__":
    sys.exit(ACTIONS[sys.argv[1]]())
