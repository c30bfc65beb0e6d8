"""Render the Kubernetes objects of a stack to YAML, without a cluster: `make manifests STACK=prod`.

    python -m infra.render --stack prod --out manifests/prod

The program runs under Pulumi mocks with the stack's config (Pulumi.yaml defaults + Pulumi.<stack>.yaml).
Every Pulumi secret is written as "[secret]". The image digest is a stand-in computed from the build
inputs, since nothing is built. Resources that are not Kubernetes objects (the image build, the Helm
release of the CNPG operator, the generated password, a GKE node pool) are listed in
pulumi-resources.txt (YAML) for review; they are not manifests to apply.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from infra import contract
from infra import mocked_run as harness
from model.cliargs import OneLineParser

log = logging.getLogger("infra.render")
NON_KUBERNETES_FILE = "pulumi-resources.txt"  # not *.yaml: `kubernetes-validate dir/*.yaml` must see only objects
PROTECTED_HEADER = "# pulumi: protect=true (a destroy or a replacement of this object fails; see docs/deploy.md)\n"
_KIND_ORDER = ["Namespace", "ServiceAccount", "Secret", "ConfigMap", "Cluster", "Deployment", "Service"]


PLACEHOLDER_VERSION = re.compile(r"-0{12}$")  # the stack files' house-price-000000000000: "set me"


def render(stack: str, out: Path) -> list[Path]:
    """Run the stack under mocks and write one YAML file per Kubernetes object; return the paths."""
    config, secret_keys = harness.load_stack_config(stack)
    if problem := model_version_problem(stack, config):
        log.warning("warning: %s", problem)
    return write_manifests(harness.run_program(stack, config, secret_keys), out)


def model_version_problem(stack: str, config: dict[str, str]) -> str | None:
    """Why the manifests would not show a real model: a placeholder modelVersion, or one with no artifact here."""
    version = config.get(contract.full_key(contract.MODEL_VERSION), "")
    if not version or PLACEHOLDER_VERSION.search(version):
        return (
            f"stack {stack}'s modelVersion is the placeholder {version!r}: these manifests name no real model; "
            f"render a deployed one with `pulumi config set modelVersion <version> -s {stack}` (see `make train`)"
        )
    if config.get(contract.full_key(contract.IMAGE_DIGEST_REF)):
        return None  # an image by digest carries its own model: no artifact folder needed here
    folder = config.get(contract.full_key(contract.ARTIFACT_DIR)) or f"artifacts/{version}"
    path = Path(folder) if Path(folder).is_absolute() else harness.REPO_ROOT / folder
    if not (path / "manifest.json").is_file():
        return f"stack {stack}'s modelVersion {version} names no artifact: {folder}/manifest.json is not here"
    return None


def write_manifests(run: harness.ProgramRun, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.yaml")]:
        stale.unlink()  # objects removed from the program must not linger in the review
    objects = sorted(run.kubernetes_objects(), key=_order)
    paths = []
    for index, resource in enumerate(objects, start=1):
        path = out / f"{index:02d}-{resource.kind.lower()}-{_slug(resource.name)}.yaml"
        # Sorted keys: the wire format has no stable order, and reviewers diff these files.
        path.write_text(_header(resource) + yaml.safe_dump(to_manifest(resource), sort_keys=True))
        paths.append(path)
    others = [r for r in run.resources if r.custom and not r.is_kubernetes_object]
    listing = [{"type": r.type, "name": r.name, "inputs": _plain(harness.masked(r.inputs))} for r in others]
    header = "# Not Kubernetes objects: the other resources of the stack, secrets masked.\n"
    (out / NON_KUBERNETES_FILE).write_text(header + yaml.safe_dump(listing, sort_keys=True))
    return paths


def to_manifest(resource: harness.Captured) -> dict[str, Any]:
    """The object as `kubectl apply` would take it: secrets masked, whole numbers as integers."""
    manifest: dict[str, Any] = _plain(harness.masked(resource.inputs))
    return manifest


def _header(resource: harness.Captured) -> str:
    # `protect` is a Pulumi option, not a field of the object: say so where reviewers look.
    return PROTECTED_HEADER if resource.protect else ""


def _plain(value: Any) -> Any:
    # Pulumi's wire format has only doubles; Kubernetes schemas want integers where they are whole.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _order(resource: harness.Captured) -> tuple[int, str]:
    rank = _KIND_ORDER.index(resource.kind) if resource.kind in _KIND_ORDER else len(_KIND_ORDER)
    return rank, resource.name


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", name.lower())


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m infra.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="dev, staging or prod (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--out", required=True, type=Path, help="folder to (re)write, e.g. manifests/prod")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (harness.REPO_ROOT / f"Pulumi.{args.stack}.yaml").is_file():
        stacks = ", ".join(sorted(p.stem.split(".", 1)[1] for p in harness.REPO_ROOT.glob("Pulumi.*.yaml")))
        parser.error(f"no Pulumi.{args.stack}.yaml in {harness.REPO_ROOT}; stacks here: {stacks}")
    paths = render(args.stack, args.out)
    log.info("wrote %d Kubernetes objects of stack %s to %s", len(paths), args.stack, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
