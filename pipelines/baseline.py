"""Find the manifest of the model a stack serves now: the gate's default baseline."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from model.artifact import ArtifactError, load_manifest
from model.manifest import Manifest
from pipelines.errors import StageError
from pipelines.settings import REPO_ROOT, get_settings
from pipelines.targets.base import Target, deployed_update, reachable_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Baseline:
    manifest: Manifest
    source: str


def _from_service(url: str, timeout_s: float, api_key: str | None) -> Manifest:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}  # prod has auth.required
    response = httpx.get(f"{url.rstrip('/')}/model", timeout=timeout_s, headers=headers)
    response.raise_for_status()
    return Manifest.from_dict(response.json(), f"{url.rstrip('/')}/model")


def _settings_key() -> str | None:
    key = get_settings().api_key
    return key.get_secret_value() if key else None


def stack_baseline(target: Target, stack: str, timeout_s: float = 10.0, api_key: str | None = None) -> Baseline | None:
    """The deployed model of STACK, from its artifact folder if it is on this machine, else its /model.

    `api_key` (default: MODELSHIP_PIPELINE_API_KEY) is sent to /model: a stack with auth.required answers
    401 without one.

    Returns None when the stack has never been deployed successfully (a first release has no baseline).
    """
    try:
        handle = target.select(stack)
    except StageError:
        log.info("stack %s does not exist yet: no baseline", stack)
        return None
    current = deployed_update(handle.history())
    if current is None:
        return None
    where = f"stack {stack} update #{current.number}"
    folder = REPO_ROOT / current.artifact_dir if current.artifact_dir else None
    if folder is not None and (folder / "manifest.json").is_file():
        try:
            return Baseline(load_manifest(folder), f"{where} ({current.artifact_dir})")
        except ArtifactError as exc:
            log.warning("artifact of %s is unreadable (%s); asking the service", where, exc)
    url = reachable_url(handle.outputs())
    if not url:
        raise StageError(f"cannot read the model of {where}: no artifact folder here and no URL output")
    try:
        manifest = _from_service(str(url), timeout_s, api_key if api_key is not None else _settings_key())
    except (httpx.HTTPError, ValueError) as exc:
        raise StageError(
            f"cannot read the model of {where}: artifact {current.artifact_dir} is not on this machine and "
            f"{url}/model failed ({exc}). Pass --baseline ARTIFACT to gate against a given artifact."
        ) from exc
    if manifest.version != current.model_version:
        log.warning("%s/model reports %s but %s deployed %s", url, manifest.version, where, current.model_version)
    return Baseline(manifest, f"{where} ({url}/model)")
