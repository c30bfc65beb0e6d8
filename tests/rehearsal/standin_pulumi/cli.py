"""Command line of the stand-in: exactly the commands and flags pulumi.automation (3.x, installed) invokes.

Read from pulumi/automation/_local_workspace.py, _stack.py and _cmd.py: `version`; `stack select/init/ls/rm`,
`stack history --json`, `stack output --json [--show-secrets]`, `stack tag set/get/rm/ls`; `config` (list),
`config get/set/set-all/rm/rm-all`; `up`, `preview`, `destroy` (with `--event-log FILE`), and `cancel`.
Every command the SDK adds `--non-interactive` to, and `--stack <name>` where it names a stack.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.rehearsal.standin_pulumi import STANDIN
from tests.rehearsal.standin_pulumi import commands as cmd
from tests.rehearsal.standin_pulumi.state import StandinError

# A version the SDK accepts (>= _MINIMUM_VERSION 3.1.0) and at most 3.205.0, so that `--event-log` is a file
# (_stack.py _setup_event_log switches to a gRPC endpoint above 3.205.0, which the stand-in does not serve).
VERSION = "3.205.0-standin"

VALUE_FLAGS = {
    "--stack": "stack",
    "-s": "stack",
    "--message": "message",
    "-m": "message",
    "--policy-pack": "policy_pack",
    "--policy-pack-config": "policy_pack_config",
    "--exec-kind": "exec_kind",
    "--event-log": "event_log",
    "--color": "color",
    "--secrets-provider": "secrets_provider",
    "--page-size": "page_size",
    "--page": "page",
    "--parallel": "parallel",
    "--json-value": "json_value",
}
BOOL_FLAGS = {
    "--non-interactive",
    "--yes",
    "-y",
    "--skip-preview",
    "--json",
    "-j",
    "--show-secrets",
    "--path",
    "--force",
    "-f",
    "--preserve-config",
    "--no-select",
    "--all",
    "--diff",
    "--secret",
    "--plaintext",
    "--suppress-progress",
}


@dataclass
class Args:
    words: list[str] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    pairs: list[tuple[bool, str]] = field(default_factory=list)  # config set-all: (secret, "k=v")

    def one(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else None

    def has(self, *flags: str) -> bool:
        return any(f in self.flags for f in flags)


def parse(argv: Sequence[str]) -> Args:
    args = Args()
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token == "--":
            args.words += tokens[index:]
            break
        name, eq, inline = token.partition("=")
        if args.words[:2] == ["config", "set-all"] and name in ("--plaintext", "--secret"):
            value = inline if eq else tokens[index]
            index += 0 if eq else 1
            args.pairs.append((name == "--secret", value))
        elif name in VALUE_FLAGS:
            value = inline if eq else tokens[index]
            index += 0 if eq else 1
            args.values.setdefault(VALUE_FLAGS[name], []).append(value)
        elif name in BOOL_FLAGS:
            args.flags.add(name)
        elif token.startswith("--run-program") or token.startswith("--refresh="):
            args.flags.add(token)
        elif token.startswith("-"):
            raise StandinError(f"flag {token} is not implemented by the stand-in")
        else:
            args.words.append(token)
    return args


Handler = Callable[[Args], int]


def _commands() -> dict[tuple[str, ...], Handler]:
    return {
        ("version",): lambda a: _say(VERSION),
        ("stack", "select"): cmd.stack_select,
        ("stack", "init"): cmd.stack_init,
        ("stack", "ls"): cmd.stack_ls,
        ("stack", "rm"): cmd.stack_rm,
        ("stack", "history"): cmd.stack_history,
        ("stack", "output"): cmd.stack_output,
        ("stack", "tag", "set"): cmd.tag_set,
        ("stack", "tag", "get"): cmd.tag_get,
        ("stack", "tag", "rm"): cmd.tag_rm,
        ("stack", "tag", "ls"): cmd.tag_ls,
        ("config",): cmd.config_list,
        ("config", "get"): cmd.config_get,
        ("config", "set"): cmd.config_set,
        ("config", "set-all"): cmd.config_set_all,
        ("config", "rm"): cmd.config_rm,
        ("config", "rm-all"): cmd.config_rm_all,
        ("up",): cmd.up,
        ("preview",): cmd.preview,
        ("destroy",): cmd.destroy,
        ("cancel",): cmd.cancel,
    }


def _say(text: str) -> int:
    print(text)
    return 0


def _help() -> int:
    names = sorted(" ".join(words) for words in _commands())
    print(f"{STANDIN} {VERSION}: a stand-in for the Pulumi CLI, for tests only.\nCommands: " + ", ".join(names))
    return 0


def _find(words: list[str]) -> tuple[Handler, list[str]]:
    table = _commands()
    for size in (3, 2, 1):
        if tuple(words[:size]) in table:
            return table[tuple(words[:size])], words[size:]
    raise StandinError(f"`pulumi {' '.join(words[:2]) or '(no command)'}` is not implemented by the stand-in")


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] in ("help", "--help", "-h") or "--help" in argv:
        return _help()
    try:
        args = parse(argv)
        handler, rest = _find(args.words)
        args.words = rest
        return handler(args)
    except StandinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"({STANDIN})", file=sys.stderr)
        return 255
