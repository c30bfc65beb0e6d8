"""Stage `deploy`: point a stack at an artifact (and, on Kubernetes, an image digest) and run `up`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.artifact import ArtifactError, verify_artifact
from pipelines import commands
from pipelines.errors import ConfigError
from pipelines.settings import REPO_ROOT, PipelineSettings, get_settings
from pipelines.targets import get_target
from pipelines.targets.base import (
    API_KEYS_KEY,
    ARTIFACT_DIR_KEY,
    IMAGE_REF_KEY,
    MODEL_VERSION_KEY,
    PROJECT,
    OnOutput,
    Stack,
    Target,
    reachable_url,
)

log = logging.getLogger(__name__)

LOCAL_IMAGE = "local/modelship"


@dataclass(frozen=True)
class DeployResult:
    stack: str
    target: str
    model_version: str
    artifact: str
    image_ref: str
    update: int | None
    url: str | None
    outputs: dict[str, Any]


def deploy_config(artifact: Path, target_kind: str, image_ref: str | None = None) -> dict[str, str]:
    """The stack config that deploys ARTIFACT. Locally the artifact's sha256 stands in for the image digest."""
    try:
        manifest = verify_artifact(Path(artifact))
    except ArtifactError as exc:
        raise ConfigError(f"refusing to deploy {artifact}: {exc}") from exc
    if image_ref is None:
        if target_kind != "local":
            raise ConfigError(
                "a pulumi deploy needs --image <registry>/modelship@sha256:<digest>, the image built with "
                "this artifact (deploy.yml builds and pushes it); a tag would not be a reproducible deploy"
            )
        image_ref = f"{LOCAL_IMAGE}@sha256:{manifest.artifact.sha256}"
    if "@sha256:" not in image_ref:
        raise ConfigError(f"--image must be pinned by digest (…@sha256:…), got {image_ref}")
    return {
        MODEL_VERSION_KEY: manifest.version,
        ARTIFACT_DIR_KEY: artifact_dir_value(Path(artifact)),
        IMAGE_REF_KEY: image_ref,
    }


def artifact_dir_value(artifact: Path) -> str:
    """Relative to the repo root when inside it (infra bakes it from the build context), else absolute."""
    absolute = artifact.absolute()
    return str(absolute.relative_to(REPO_ROOT)) if absolute.is_relative_to(REPO_ROOT) else str(absolute)


def apply_config(
    handle: Stack, target_kind: str, config: Mapping[str, str], message: str, on_output: OnOutput | None = None
) -> DeployResult:
    """Set CONFIG on the stack and run `up`: the one way deploy, promote and rollback change a stack.

    On pulumi, the API keys file of MODELSHIP_PIPELINE_API_KEYS (the environment's secret) is stored as the
    secret auth.apiKeys first, so a stack with auth.required gets its keys from the environment that deploys
    it, never from a file in the repo, and a rotated secret reaches the pods on the next deploy.
    """
    handle.set_config(config)
    keys = get_settings().api_keys
    if keys is not None and target_kind != "local":
        handle.set_config({API_KEYS_KEY: keys.get_secret_value()}, secret=True)
    log.info("up %s: %s", handle.name, message)
    outcome = handle.up(message, on_output)
    return DeployResult(
        stack=handle.name,
        target=target_kind,
        model_version=config[MODEL_VERSION_KEY],
        artifact=config.get(ARTIFACT_DIR_KEY, ""),
        image_ref=config.get(IMAGE_REF_KEY, ""),
        update=outcome.update,
        url=reachable_url(outcome.outputs),
        outputs=outcome.outputs,
    )


def stack_settings(pairs: Mapping[str, str]) -> dict[str, str]:
    """Extra stack config (`--config key=value`): bare keys belong to the modelship project."""
    return {key if ":" in key else f"{PROJECT}:{key}": str(value) for key, value in pairs.items()}


def deploy(
    target: Target,
    stack: str,
    artifact: Path,
    *,
    message: str,
    image_ref: str | None = None,
    extra_config: Mapping[str, str] | None = None,
    on_output: OnOutput | None = None,
) -> DeployResult:
    """Deploy ARTIFACT to STACK and return the stack's outputs.

    Args:
        target: where stacks live (`local` or `pulumi`).
        stack: the stack name (dev, staging, prod, pr-<n>); created if it does not exist.
        artifact: a verified artifact folder.
        message: the update's message in the history (git sha, PR).
        image_ref: the serving image by digest; required on pulumi, derived from the artifact locally.
        extra_config: other stack settings, e.g. {"db.installOperator": "false"} for a PR stack.
        on_output: receives the update's output line by line (streamed).

    Returns:
        DeployResult with the update number, the URL and all stack outputs.

    Raises:
        StackBusyError: another update runs on the stack (nothing changed).
        UpdateFailedError: `up` failed; the history records it.
    """
    config = {**stack_settings(extra_config or {}), **deploy_config(artifact, target.kind, image_ref)}
    handle = target.select(stack, create=True)
    return apply_config(handle, target.kind, config, message, on_output)


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    commands.stack_options(parser)
    parser.add_argument("--artifact", type=Path, required=True)
    commands.image_option(parser)
    commands.message_option(parser, "update message (default: action + PR/git sha)")
    commands.config_option(parser)


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    result = deploy(
        get_target(args.target, settings),
        args.stack,
        args.artifact,
        message=commands.message(args, f"deploy {args.artifact.name}"),
        image_ref=args.image,
        extra_config=commands.raw_pairs(args.config),
        on_output=commands.stream,
    )
    commands.out(
        f"url={result.url}\nmodel_version={result.model_version}\nimage={result.image_ref}\nupdate={result.update}"
    )
    return commands.finish(args, "deploy", result, True)


STAGE = commands.Stage("deploy", "deploy an artifact to a stack", _add_arguments, _run)
