"""One function per stand-in command. Output shapes follow the real CLI's `--json` output (cited per command)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra import contract
from tests.rehearsal.standin_pulumi import STANDIN, merge
from tests.rehearsal.standin_pulumi.state import StackState, StandinError, all_stacks, current_stack_file, stack_state

if TYPE_CHECKING:
    from tests.rehearsal.standin_pulumi import engine
    from tests.rehearsal.standin_pulumi.cli import Args

# The engine and apply modules import the Pulumi SDK, the infra program's providers and the service; only
# `up`, `preview`, `destroy` and `stack rm` need them, so they are imported there (every SDK call is a process).

# pkg/cmd/pulumi/stack/stack_history.go formats times with cmd.FormatTime; the SDK parses them with
# _DATETIME_FORMAT "%Y-%m-%dT%H:%M:%S.%fZ".
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MASK = "[secret]"


def _dump(data: object) -> int:
    print(json.dumps(data, indent=4))
    return 0


def _now() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


def _project() -> str:
    return str(merge.load_project(Path.cwd())["name"])


def _stack(args: Args, must_exist: bool = True) -> StackState:
    name = args.one("stack")
    if name is None:
        current = current_stack_file()
        if not current.exists():
            raise StandinError("no stack selected; pass --stack (the stand-in has no interactive selection)")
        name = current.read_text().strip()
    state = stack_state(_project(), name)
    return state.require() if must_exist else state


def _passphrase() -> None:
    # The passphrase secrets provider of a file backend refuses to work without one.
    if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
        raise StandinError(
            "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE "
            "environment variables"
        )


# --- stack ------------------------------------------------------------------------------------------
def stack_select(args: Args) -> int:
    state = _stack(args)
    current_stack_file().parent.mkdir(parents=True, exist_ok=True)
    current_stack_file().write_text(state.name)
    return 0


def stack_init(args: Args) -> int:
    _passphrase()
    name = args.words[0] if args.words else args.one("stack")
    if not name:
        raise StandinError("stack init needs a stack name")
    state = stack_state(_project(), name)
    state.create()
    if not args.has("--no-select"):
        current_stack_file().write_text(state.name)
    print(f"Created stack '{state.name}' ({STANDIN})")
    return 0


def stack_ls(args: Args) -> int:
    current = current_stack_file().read_text().strip() if current_stack_file().exists() else ""
    rows = []
    for state in all_stacks(_project()):
        history = state.history()
        row: dict[str, Any] = {
            "name": state.name,
            "current": state.name == current,
            "updateInProgress": any(state.lock_dir.glob("*.json")) if state.lock_dir.exists() else False,
            "resourceCount": len(state.resources()),
            "url": f"file://{state.root.parent}",
        }
        if history:
            row["lastUpdate"] = history[0].get("endTime", history[0]["startTime"])
        rows.append(row)
    return _dump(rows)


def stack_rm(args: Args) -> int:
    name = args.words[0] if args.words else args.one("stack")
    state = stack_state(_project(), name or "").require()
    if state.resources() and not args.has("--force", "-f"):
        raise StandinError(
            f"'{state.name}' still has resources; removal rejected. Possible actions:\n"
            "- Make sure that 'pulumi destroy' has been run\n- To delete the stack anyway, use --force"
        )
    from tests.rehearsal.standin_pulumi import apply

    apply.tear_down(state)
    state.remove()
    print(f"Stack '{state.name}' has been removed! ({STANDIN})")
    return 0


def stack_history(args: Args) -> int:
    """stack_history.go buildUpdatesJSON: a secret's value only with --show-secrets."""
    entries = _stack(args).history()
    if args.one("page_size"):
        size, page = int(args.one("page_size") or 0), int(args.one("page") or 1)
        entries = entries[(page - 1) * size : page * size]
    show = args.has("--show-secrets")
    for entry in entries:
        entry["config"] = {k: _shown(v, show) for k, v in entry["config"].items()}
    return _dump(entries)


def _shown(value: dict[str, Any], show: bool) -> dict[str, Any]:
    if value.get("secret") and not show:
        return {"secret": True}
    shown: dict[str, Any] = {"value": value["value"], "secret": bool(value.get("secret"))}
    if value.get("object") and value["value"]:
        shown["objectValue"] = json.loads(value["value"])
    return shown


def stack_output(args: Args) -> int:
    show = args.has("--show-secrets")
    outputs = _stack(args).outputs()
    return _dump({k: (v["value"] if show or not v["secret"] else MASK) for k, v in outputs.items()})


def tag_set(args: Args) -> int:
    state = _stack(args)
    key, value = args.words[0], args.words[1]
    state.set_tags({**state.tags(), key: value})
    return 0


def tag_get(args: Args) -> int:
    tags = _stack(args).tags()
    if args.words[0] not in tags:
        raise StandinError(f"stack tag '{args.words[0]}' not found")
    print(tags[args.words[0]])
    return 0


def tag_rm(args: Args) -> int:
    state = _stack(args)
    state.set_tags({k: v for k, v in state.tags().items() if k != args.words[0]})
    return 0


def tag_ls(args: Args) -> int:
    # the DIY backend adds the project tag itself (pkg/backend/diy/stack.go Tags)
    return _dump({"pulumi:project": _project(), **_stack(args).tags()})


# --- config -----------------------------------------------------------------------------------------
def _config_key(args: Args, raw: str) -> str:
    return merge.full_key(_project(), raw)


def config_list(args: Args) -> int:
    show = args.has("--show-secrets")
    config = _stack(args).config()
    return _dump({k: _shown(v, show) | ({"value": v["value"]} if show else {}) for k, v in config.items()})


def config_get(args: Args) -> int:
    state = _stack(args)
    merged_source = {**merge.stack_file_config(Path.cwd(), state.project, state.name), **state.config()}
    key = _config_key(args, args.words[0])
    value = merge.get(merged_source, key, path=args.has("--path"))
    if value is None:
        raise StandinError(f"configuration key '{args.words[0]}' not found for stack '{state.name}'")
    if args.has("--json"):
        return _dump(_shown(value, True))
    print(value["value"])
    return 0


def _set(state: StackState, key: str, raw: str, secret: bool, path: bool) -> None:
    if secret:
        _passphrase()
    config = state.config()
    merge.set_value(config, key, {"value": raw, "secret": secret, "object": False}, path)
    state.set_config(config)


def config_set(args: Args) -> int:
    state = _stack(args)
    if not args.words:
        raise StandinError("config set needs a key")
    # `pulumi config set KEY` without a value reads it from stdin (how a file's content goes in).
    raw = args.words[1] if len(args.words) > 1 else sys.stdin.read().rstrip("\n")
    _set(state, _config_key(args, args.words[0]), raw, args.has("--secret"), args.has("--path"))
    return 0


def config_set_all(args: Args) -> int:
    state = _stack(args)
    if args.one("json_value"):
        raise StandinError("config set-all --json is not implemented by the stand-in")
    for secret, pair in args.pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise StandinError(f"expected KEY=VALUE, got {pair!r}")
        _set(state, _config_key(args, key), raw, secret, args.has("--path"))
    return 0


def config_rm(args: Args) -> int:
    state = _stack(args)
    config = state.config()
    config.pop(_config_key(args, args.words[0]), None)
    state.set_config(config)
    return 0


def config_rm_all(args: Args) -> int:
    state = _stack(args)
    keys = {_config_key(args, k) for k in args.words}
    state.set_config({k: v for k, v in state.config().items() if k not in keys})
    return 0


# --- operations -------------------------------------------------------------------------------------
class _Events:
    """`--event-log FILE`: JSON lines of engine events, read by the SDK's _watch_logs when on_event is set."""

    def __init__(self, target: str | None) -> None:
        if target and target.startswith("tcp://"):
            raise StandinError("a gRPC --event-log endpoint is not implemented by the stand-in")
        self.path = Path(target) if target else None
        self.sequence = 0

    def emit(self, **event: Any) -> None:
        if self.path is None:
            return
        with self.path.open("a") as out:
            out.write(json.dumps({"sequence": self.sequence, "timestamp": int(time.time()), **event}) + "\n")
        self.sequence += 1


def _prepare(args: Args, state: StackState, preview: bool = False) -> tuple[engine.Plan, dict[str, Any]]:
    """Merge config, run the program, run the policy pack: everything `up` and `preview` share."""
    from tests.rehearsal.standin_pulumi import engine

    project = merge.load_project(Path.cwd())
    stack_config = {**merge.stack_file_config(Path.cwd(), state.project, state.name), **state.config()}
    merged = merge.merge(project, state.name, stack_config)
    values, secret_keys = merge.program_config(merged)
    run = engine.run_program(state.name, values, secret_keys, preview)
    violations: list[str] = []
    for folder in args.values.get("policy_pack", []):
        pack, mandatory, advisory = engine.check_policies(Path(folder).absolute(), run, state.name)
        checked = sum(1 for r in run.resources if r.custom)
        print(f"Policy pack {pack}: {checked} resources checked, {len(mandatory)} mandatory violation(s)")
        for line in advisory:
            print(f"    [advisory]  {pack}  {line}")
        for line in mandatory:
            print(f"    [mandatory]  {pack}  {line}")
        violations += [f"{pack}: {line}" for line in mandatory]
    return engine.Plan(run, engine.plan(run, state.resources()), violations), merged


def _print_plan(title: str, state: StackState, steps: dict[str, str]) -> None:
    print(f"{title} ({state.name}) ({STANDIN}: inputs compared with the last update, no provider diff):")
    for key, op in sorted(steps.items()):
        mark = {"create": "+", "update": "~", "delete": "-", "same": " "}[op]
        print(f"    {mark} {key.replace('::', '  ')}  {op}")


def preview(args: Args) -> int:
    state = _stack(args)
    events = _Events(args.one("event_log"))
    result, _ = _prepare(args, state, preview=True)
    _print_plan("Previewing update", state, result.steps)
    events.emit(summaryEvent={"maybeCorrupt": False, "durationSeconds": 0, "resourceChanges": result.changes()})
    if result.violations:
        raise StandinError("preview failed: mandatory policy violations:\n  " + "\n  ".join(result.violations))
    print("Resources:\n    " + ", ".join(f"{n} to {op}" for op, n in sorted(result.changes().items())))
    return 0


def up(args: Args) -> int:
    state = _stack(args)
    _passphrase()
    events = _Events(args.one("event_log"))
    lock = state.lock()
    try:
        return _update(args, state, events)
    finally:
        lock.unlink(missing_ok=True)


def _update(args: Args, state: StackState, events: _Events) -> int:
    from pipelines.errors import UpdateFailedError
    from tests.rehearsal.standin_pulumi import apply, engine

    start, began = _now(), time.monotonic()
    try:
        result, merged = _prepare(args, state)
    except StandinError as exc:
        if str(exc).startswith("Stack '"):
            raise  # a config error stops before the update starts: no history entry, as in the engine
        _record(state, args, start, "failed", {}, {})
        raise
    _print_plan("Updating", state, result.steps)
    if result.violations:
        _record(state, args, start, "failed", merged, {})
        raise StandinError("update failed: mandatory policy violations:\n  " + "\n  ".join(result.violations))
    print(f"    (program and policies: {time.monotonic() - began:.1f} s)")
    try:
        where = apply.roll_out(state, result.run.resources, print)
    except UpdateFailedError as exc:
        _record(state, args, start, "failed", merged, {})
        raise StandinError(f"update failed: the Deployment did not become ready: {exc}") from exc
    outputs = engine.outputs_of(result.run)
    outputs[contract.OUTPUT_URL] = {"value": where.url, "secret": False}
    outputs[contract.OUTPUT_EXTERNAL_ADDRESS] = {"value": f"127.0.0.1:{where.port}", "secret": False}
    state.save({**state.data(), "outputs": outputs, "resources": engine.recorded(result.run)})
    version = _record(state, args, start, "succeeded", merged, result.changes())
    events.emit(summaryEvent={"maybeCorrupt": False, "durationSeconds": 0, "resourceChanges": result.changes()})
    print("Outputs:")
    for name, out in sorted(outputs.items()):
        print(f"    {name}: {MASK if out['secret'] else json.dumps(out['value'])}")
    print(f"Update {version} of {state.name} succeeded in {time.monotonic() - began:.1f} s ({STANDIN})")
    return 0


def _record(
    state: StackState, args: Args, start: str, result: str, merged: dict[str, Any], changes: dict[str, int]
) -> int:
    return state.append_history(
        {
            "kind": "update",
            "startTime": start,
            "endTime": _now(),
            "message": args.one("message") or "",
            "environment": {"exec.kind": args.one("exec_kind") or "cli", "exec.agent": STANDIN},
            "config": merged,
            "result": result,
            "resourceChanges": changes,
        }
    )


def destroy(args: Args) -> int:
    state = _stack(args)
    lock = state.lock()
    try:
        from tests.rehearsal.standin_pulumi import apply

        start, count = _now(), len(state.resources())
        apply.tear_down(state)
        state.save({**state.data(), "outputs": {}, "resources": []})
        state.append_history(
            {
                "kind": "destroy",
                "startTime": start,
                "endTime": _now(),
                "message": args.one("message") or "",
                "environment": {"exec.kind": args.one("exec_kind") or "cli", "exec.agent": STANDIN},
                "config": state.config(),
                "result": "succeeded",
                "resourceChanges": {"delete": count},
            }
        )
        print(f"Destroying ({state.name}): {count} resources deleted, local processes stopped ({STANDIN})")
        return 0
    finally:
        lock.unlink(missing_ok=True)


def cancel(args: Args) -> int:
    state = _stack(args)
    state.cancel()
    print(f"The currently running update for '{state.name}' has been canceled! ({STANDIN})")
    return 0
