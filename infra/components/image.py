"""ModelImage: the serving image for one model artifact, referenced only by digest."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from model.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
_DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelImageArgs:
    repository: str
    model_version: str
    artifact_dir: str  # inside the repo (the build context): absolute or relative to it
    git_revision: str
    platform: str
    registry_server: str
    registry_username: str
    registry_password: pulumi.Input[str]
    digest_ref: str = ""  # set: deploy this digest and build nothing (promote, rollback)
    base_image: str = ""  # set: build arg BASE_IMAGE, e.g. a CUDA base for the GPU pool


class ModelImage(pulumi.ComponentResource):
    """Builds the repo Dockerfile for one artifact and pushes it, or adopts an existing digest."""

    ref: pulumi.Output[str]

    def __init__(self, name: str, args: ModelImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelship:index:ModelImage", name, None, opts)
        if args.digest_ref:
            self.ref = pulumi.Output.from_input(args.digest_ref)
        else:
            image = docker.Image(
                f"{name}-build",
                image_name=f"{args.repository}:{args.model_version}",
                build=docker.DockerBuildArgs(
                    context=_relative_to_cwd(REPO_ROOT),
                    dockerfile=_relative_to_cwd(REPO_ROOT / "Dockerfile"),
                    platform=args.platform,
                    args=build_args(args),
                ),
                registry=_registry(args),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ref = image.repo_digest.apply(_require_digest)
        self.register_outputs({"ref": self.ref})


def build_args(args: ModelImageArgs) -> dict[str, str]:
    """Build args of the Dockerfile (docs/architecture.md, "Container")."""
    values = {
        "MODEL_DIR": context_relative(args.artifact_dir),
        "MODEL_VERSION": args.model_version,
        "GIT_REVISION": args.git_revision,
        **label_args(args.artifact_dir, args.git_revision),
    }
    if args.base_image:
        values["BASE_IMAGE"] = args.base_image
    return values


def artifact_sha256(artifact_dir: str) -> str:
    """model.joblib's sha256 as the artifact's manifest records it; "" when the folder is not here (a
    promote or rollback by digest: the image then still pins its own model, see the Dockerfile)."""
    path = Path(artifact_dir) if Path(artifact_dir).is_absolute() else REPO_ROOT / artifact_dir
    with contextlib.suppress(OSError, ValueError):
        return Manifest.load(path / "manifest.json").artifact.sha256
    return ""


def label_args(artifact_dir: str, git_revision: str) -> dict[str, str]:
    """MODEL_SHA256 from the artifact's manifest, CREATED and SOURCE from git; each only when known.

    CREATED is the commit time, not the wall clock (as SOURCE_DATE_EPOCH does for reproducible builds): a
    label that changed on every build would give every `pulumi up` a new digest and a rollout. The
    Dockerfile's build check refuses an empty or contradicting MODEL_SHA256 and an empty CREATED.
    """
    values: dict[str, str] = {}
    if sha256 := artifact_sha256(artifact_dir):
        values["MODEL_SHA256"] = sha256
    for key, argv in (
        ("CREATED", ["git", "show", "-s", "--format=%cI", git_revision]),
        ("SOURCE", ["git", "config", "--get", "remote.origin.url"]),
    ):
        done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            values[key] = done.stdout.strip()
    return values


def context_relative(artifact_dir: str) -> str:
    """MODEL_DIR as the Dockerfile's COPY needs it: a path inside the build context, POSIX-style."""
    path = Path(artifact_dir)
    absolute = path if path.is_absolute() else REPO_ROOT / path
    try:
        return absolute.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        raise ValueError(f"artifactDir {artifact_dir} is outside the build context {REPO_ROOT}") from None


def _registry(args: ModelImageArgs) -> docker.RegistryArgs | None:
    if not args.registry_username:
        return None  # docker pushes with the credentials of the local docker login
    server = args.registry_server if args.registry_server else args.repository.split("/", 1)[0]
    return docker.RegistryArgs(
        server=server,
        username=args.registry_username,
        password=pulumi.Output.secret(args.registry_password),
    )


def _relative_to_cwd(path: Path) -> str:
    # Relative, so the same stack previews identically from any checkout location.
    return os.path.relpath(path, Path.cwd())


def _require_digest(ref: str) -> str:
    if not _DIGEST_REF.match(ref or ""):
        raise ValueError(f"the pushed image has no repo@sha256 digest (got {ref!r}); is the registry reachable?")
    return ref


if __name__ == "__main__":
    # `python -m infra.components.image ARTIFACT_DIR [REVISION]`: the --build-arg words `make image` passes.
    folder, revision = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "HEAD"
    manifest = Manifest.load(Path(folder) / "manifest.json")
    rev = subprocess.run(["git", "rev-parse", revision], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    found = build_args(
        ModelImageArgs(
            repository="",
            model_version=manifest.version,
            artifact_dir=folder,
            git_revision=rev.stdout.strip(),
            platform="",
            registry_server="",
            registry_username="",
            registry_password="",
        )
    )
    print(" ".join(f"--build-arg {key}={value}" for key, value in found.items()))
