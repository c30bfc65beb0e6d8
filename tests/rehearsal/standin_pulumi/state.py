"""The stand-in's `file://` backend: one folder per stack, laid out like the real DIY backend's `.pulumi/`.

    <backend>/.pulumi/stacks/<project>/<stack>/stack.json    config set through the CLI, outputs, resources
    <backend>/.pulumi/stacks/<project>/<stack>/history.json  `pulumi stack history --json` entries, newest first
    <backend>/.pulumi/stacks/<project>/<stack>/tags.json
    <backend>/.pulumi/locks/organization/<project>/<stack>/<id>.json   one file per running update
    <backend>/.pulumi/standin-run/<project>/<stack>/         what `up` started here: pids, Postgres, mounts, logs

Differences from the real CLI, on purpose: values set with `pulumi config set` live in stack.json rather
than in `Pulumi.<stack>.yaml` of the work dir, so a rehearsal never edits the checkout (the merge order is the
same: they win over the stack file). Secrets are kept in clear text inside the backend folder, marked secret;
the real CLI encrypts them with PULUMI_CONFIG_PASSPHRASE, which the stand-in requires all the same.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# pkg/backend/diy/lock.go, checkForLock: the SDK maps "the stack is currently locked by" to
# ConcurrentUpdateError (pulumi/automation/errors.py, diy_backend_conflict_text).
LOCKED = (
    "the stack is currently locked by {n} lock(s). Either wait for the other process(es) to end or delete "
    "the lock file with `pulumi cancel`."
)


class StandinError(Exception):
    """An error the stand-in reports on stderr as `error: <message>` before exiting non-zero."""


def backend_dir() -> Path:
    url = os.environ.get("PULUMI_BACKEND_URL", "")
    if not url.startswith("file://"):
        raise StandinError(
            "the stand-in only has a self-managed backend: set PULUMI_BACKEND_URL=file://<dir> "
            f"(got {url or 'nothing'}); not implemented by the stand-in"
        )
    return Path(urlsplit(url).path or url[len("file://") :]).absolute()


def short_name(stack: str) -> str:
    """`dev`, `organization/dev` and `organization/modelship/dev` all name stack dev of the project."""
    return stack.rsplit("/", 1)[-1]


def _read(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


@dataclass(frozen=True)
class StackState:
    project: str
    name: str
    root: Path  # <backend>/.pulumi

    @property
    def folder(self) -> Path:
        return self.root / "stacks" / self.project / self.name

    @property
    def run_dir(self) -> Path:
        """What `up` started on this machine for the stack (removed by destroy)."""
        return self.root / "standin-run" / self.project / self.name

    @property
    def lock_dir(self) -> Path:
        return self.root / "locks" / "organization" / self.project / self.name

    def exists(self) -> bool:
        return (self.folder / "stack.json").exists()

    def create(self) -> None:
        if self.exists():
            raise StandinError(f"stack '{self.name}' already exists")
        _write(self.folder / "stack.json", {"config": {}, "outputs": {}, "resources": []})

    def require(self) -> StackState:
        if not self.exists():
            raise StandinError(f"no stack named '{self.name}' found")
        return self

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.lock_dir, ignore_errors=True)

    # --- stack.json -------------------------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        return dict(_read(self.folder / "stack.json", {"config": {}, "outputs": {}, "resources": []}))

    def save(self, data: dict[str, Any]) -> None:
        _write(self.folder / "stack.json", data)

    def config(self) -> dict[str, dict[str, Any]]:
        """Values set through the CLI: {"project:key": {"value": str, "secret": bool[, "object": true]}}."""
        return dict(self.data()["config"])

    def set_config(self, config: dict[str, dict[str, Any]]) -> None:
        self.save({**self.data(), "config": config})

    def outputs(self) -> dict[str, dict[str, Any]]:
        return dict(self.data()["outputs"])

    def resources(self) -> list[dict[str, Any]]:
        return list(self.data()["resources"])

    # --- history and tags -------------------------------------------------------------------------
    def history(self) -> list[dict[str, Any]]:
        return list(_read(self.folder / "history.json", []))

    def append_history(self, entry: dict[str, Any]) -> int:
        entries = self.history()
        entry["version"] = max((e["version"] for e in entries), default=0) + 1
        _write(self.folder / "history.json", [entry, *entries])
        return int(entry["version"])

    def tags(self) -> dict[str, str]:
        return dict(_read(self.folder / "tags.json", {}))

    def set_tags(self, tags: dict[str, str]) -> None:
        _write(self.folder / "tags.json", tags)

    # --- the update lock (pkg/backend/diy/lock.go) --------------------------------------------------
    def lock(self) -> Path:
        """Take the update lock or fail as the DIY backend does when another update holds one."""
        others = sorted(self.lock_dir.glob("*.json")) if self.lock_dir.exists() else []
        if others:
            lines = [LOCKED.format(n=len(others))]
            for other in others:
                held = _read(other, {})
                lines.append(
                    f"  {other}: created by {held.get('username')}@{held.get('hostname')} "
                    f"(pid {held.get('pid')}) at {held.get('timestamp')}"
                )
            raise StandinError("\n".join(lines))
        path = self.lock_dir / f"{uuid.uuid4()}.json"
        _write(
            path,
            {
                "pid": os.getpid(),
                "username": getpass.getuser(),
                "hostname": socket.gethostname(),
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return path

    def cancel(self) -> None:
        """`pulumi cancel` on a DIY backend deletes every lock file of the stack (backend.go CancelCurrentUpdate)."""
        shutil.rmtree(self.lock_dir, ignore_errors=True)


def all_stacks(project: str) -> list[StackState]:
    root = backend_dir() / ".pulumi"
    folder = root / "stacks" / project
    names = sorted(p.name for p in folder.iterdir() if (p / "stack.json").exists()) if folder.exists() else []
    return [StackState(project, name, root) for name in names]


def stack_state(project: str, stack: str) -> StackState:
    name = short_name(stack)
    if not name or name.startswith(".") or "/" in name:
        raise StandinError(f"invalid stack name {stack!r}")
    return StackState(project, name, backend_dir() / ".pulumi")


def current_stack_file() -> Path:
    return backend_dir() / ".pulumi" / "standin-current-stack"
