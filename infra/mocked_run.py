"""Run the Pulumi program under mocks, with a stack's config, and capture everything it declares.

Used by `python -m infra.render` and by tests/infra. No Pulumi CLI, engine or cluster is involved: the
mocks answer every resource registration with its own inputs, plus the few outputs the program reads
(the pushed image digest and the generated password).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.rpc import is_rpc_secret

from infra import config_merge
from infra.config import SECRET_KEYS
from infra.contract import PROJECT

REPO_ROOT = Path(__file__).resolve().parents[1]
PROGRAM = REPO_ROOT / "infra" / "__main__.py"
SECRET_MASK = "[secret]"  # noqa: S105 - the mask, not a password
# Stand-ins for secrets that cannot be decrypted here; they only ever travel inside Pulumi secrets.
_PLACEHOLDERS = {"db.url": "postgresql://placeholder:placeholder@external-database.invalid:5432/modelship"}

IMAGE_TYPE = "docker:index/image:Image"
PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"  # noqa: S105 - a type token


@dataclass(frozen=True)
class Captured:
    """One resource registration: inputs in wire form, so Pulumi secrets stay wrapped."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    ignore_changes: tuple[str, ...] = ()
    parent_type: str = ""  # type token of the parent resource ("pulumi:pulumi:Stack" at the top)
    protect: bool = False  # the `protect` resource option

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]

    @property
    def is_kubernetes_object(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:") and not self.type.startswith("kubernetes:helm")


@dataclass(frozen=True)
class Export:
    value: Any
    secret: bool


@dataclass
class ProgramRun:
    stack: str
    resources: list[Captured]
    exports: dict[str, Export] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Captured]:
        return [r for r in self.resources if r.custom and r.kind == kind]

    def one(self, kind: str) -> Captured:
        found = self.of_kind(kind)
        if len(found) != 1:
            raise AssertionError(f"expected one {kind}, found {[r.name for r in found]}")
        return found[0]

    def kubernetes_objects(self) -> list[Captured]:
        return [r for r in self.resources if r.is_kubernetes_object]


def load_stack_config(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    root: Path = REPO_ROOT,
) -> tuple[dict[str, str], list[str]]:
    """What the CLI would hand the program: Pulumi.<stack>.yaml, then overrides, set flat as `pulumi config
    set` does, with Pulumi.yaml's defaults merged in as the engine merges them (`infra.config_merge`).

    `secure:` values cannot be decrypted here: they become placeholders, marked secret so they never reach
    the output. Without `secrets` (rendering) every secret key gets a placeholder, so a stack renders
    before its secrets are set; with `secrets` (tests) the given values are used and the others keep
    their Pulumi.yaml default, as in a real stack.
    """
    encrypted: set[str] = set()

    def placeholder(_file: str, key: str) -> config_merge.Value:
        encrypted.add(_short(key))
        return config_merge.secret(_PLACEHOLDERS.get(_short(key), SECRET_MASK))

    given = config_merge.stack_file_config(root, PROJECT, stack, secure=placeholder)
    for key, value in (overrides or {}).items():
        given[_full(key)] = config_merge.plain(value)
    for key in SECRET_KEYS:
        if secrets is not None and key in secrets:
            given[_full(key)] = config_merge.secret(secrets[key])
        elif secrets is None or key in encrypted:
            given[_full(key)] = config_merge.secret(_PLACEHOLDERS.get(key, SECRET_MASK))
    merged = config_merge.merge(config_merge.load_project(root), stack, given)
    return config_merge.program_config(merged)


def use_mocks(stack: str, config: dict[str, str], secret_keys: list[str], preview: bool = False) -> Recorder:
    """Point the Pulumi runtime at fresh mocks with this config; resources declared from now on are recorded.

    `preview=True` runs the program as `pulumi preview` would (`pulumi.runtime.is_dry_run()` is true)."""
    mocks = _Mocks()
    monitor = _Monitor(mocks)
    _ensure_event_loop()
    runtime_settings.ROOT.set(None)  # a new root Stack, so runs do not share state
    pulumi.runtime.set_all_config(config, secret_keys)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    return Recorder(mocks, monitor)


def _ensure_event_loop() -> None:
    # Pulumi's mocks call asyncio.get_event_loop(); after an asyncio.run() elsewhere in the same process
    # (other test modules do that) there is no current loop, so give the runtime one.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


@dataclass(frozen=True)
class Recorder:
    mocks: _Mocks
    monitor: _Monitor

    def captured(self) -> list[Captured]:
        options = self.monitor.options
        return [
            Captured(a.typ, a.name, dict(a.inputs), bool(a.custom), *options.get((a.typ, a.name), ((), "", False)))
            for a in self.mocks.registered
        ]


def run_program(stack: str, config: dict[str, str], secret_keys: list[str], preview: bool = False) -> ProgramRun:
    """Run infra/__main__.py once under fresh mocks; return every registration and the stack exports."""
    recorder = use_mocks(stack, config, secret_keys, preview)
    exports: dict[str, Export] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def _run() -> Any:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        outputs = dict(getattr(root, "outputs", {}))
        return _collect(outputs, exports)

    _run()
    return ProgramRun(stack=stack, resources=recorder.captured(), exports=exports)


def masked(value: Any) -> Any:
    """The value with every Pulumi secret replaced by SECRET_MASK: what reviewers may see.

    A secret map (pulumi-kubernetes makes a Secret's whole `stringData` one) keeps its keys, which are
    names, not credentials, so the object keeps its shape: `stringData: {DATABASE_URL: "[secret]"}`.
    """
    if is_rpc_secret(value):
        inner = value["value"]
        return {k: SECRET_MASK for k in inner} if isinstance(inner, Mapping) else SECRET_MASK
    if isinstance(value, Mapping):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def plaintext_strings(value: Any) -> Iterator[str]:
    """Every string in the value that is not inside a Pulumi secret."""
    if is_rpc_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from plaintext_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plaintext_strings(v)


async def _collect(outputs: dict[str, Any], into: dict[str, Export]) -> None:
    for name, value in outputs.items():
        output = pulumi.Output.from_input(value)
        into[name] = Export(await output.future(), await output.is_secret())


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[MockResourceArgs] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        self.registered.append(args)
        outputs = dict(args.inputs)
        if args.typ == IMAGE_TYPE:
            outputs["repoDigest"] = _fake_digest(args.inputs)
        if args.typ == PASSWORD_TYPE:
            outputs["result"] = "mockpw" + hashlib.sha256(args.name.encode()).hexdigest()[:26]
        return f"{args.name}_id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, []


class _Monitor(MockMonitor):
    """The stock mock monitor drops resource options; keep ignoreChanges, the parent and protect for the tests."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.options: dict[tuple[str, str], tuple[tuple[str, ...], str, bool]] = {}

    def RegisterResource(self, request: Any) -> Any:
        # a URN ends in ::<parent types joined by $>$<type>::<name>; keep the direct parent's type
        parent_type = request.parent.split("::")[-2].split("$")[-1] if request.parent else ""
        self.options[(request.type, request.name)] = (tuple(request.ignoreChanges), parent_type, bool(request.protect))
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


def _fake_digest(inputs: Mapping[str, Any]) -> str:
    """repo@sha256:<hash of the build inputs>: a new artifact gives a new digest, as a real push would."""
    name = str(inputs.get("imageName", "registry.invalid/unknown:latest"))
    repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    digest = hashlib.sha256(json.dumps(masked(inputs.get("build")), sort_keys=True).encode()).hexdigest()
    return f"{repo}@sha256:{digest}"


def _full(key: str) -> str:
    return config_merge.full_key(PROJECT, key)


def _short(key: str) -> str:
    return key.split(":", 1)[-1]
