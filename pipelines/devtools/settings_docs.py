"""`make docs`: the two tables of docs/settings.md, rendered from where their rows are declared.

service/settings.py is the one place a service setting is declared (name, default, description), and
Pulumi.yaml (with the stack files) the one place a stack config key is, except the service settings a stack
may set (`service.maxBatch`, ...), whose rows come from their fields in service/settings.py. docs/settings.md
holds the one copy of each table, between `<!-- settings:begin/end -->` and `<!-- config:begin/end -->` markers
that this writes; tests/pipelines/test_settings_docs.py fails when the committed copy differs from this.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from infra import config_merge
from infra.config import stack_settings
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "settings.md",)
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
CONFIG_BEGIN, CONFIG_END = "<!-- config:begin -->", "<!-- config:end -->"
STACKS = ("dev", "staging", "prod")


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable pydantic-settings reads first for this field."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def _default(value: Any) -> str:
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | Path | Enum):
        return f"`{value}`"
    return str(value)


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{env_name(name, field)}` | {_default(field.default)} | {field.description or ''} |")
    return "\n".join(rows)


def _config_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) or value == "" else str(value)


def config_table(root: Path = ROOT) -> str:
    """Pulumi.yaml's keys in order: type, default, the value each stack file sets (bold) or `·`, description."""
    project = config_merge.load_project(root)
    declared = declared_with_stack_settings(project["config"])
    prefix = f"{project['name']}:"
    stacks = []
    for stack in STACKS:
        config = config_merge.stack_values(root, project["name"], stack)
        stacks.append({key.removeprefix(prefix): value for key, value in config.items()})
    rows = [f"| key | type | default | {' | '.join(STACKS)} | meaning |", "|---" * (len(STACKS) + 4) + "|"]
    for key, spec in declared.items():
        per_stack = [f"**{_config_value(c[key])}**" if key in c else "·" for c in stacks]
        cells = [f"`{key}`", spec["type"], f"`{_config_value(spec['default'])}`", *per_stack]
        rows.append(f"| {' | '.join(cells)} | {spec['description'].replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


_PULUMI_TYPES: dict[object, str] = {int: "integer", bool: "boolean"}


def declared_with_stack_settings(declared: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """DECLARED with a spec for each service setting a stack may set, after the last declared service.* key."""
    specs = {}
    for name, key in stack_settings().items():
        field = Settings.model_fields[name]
        description = f"{env_name(name, field)}: {field.description or ''}"
        specs[key] = {"type": _PULUMI_TYPES.get(field.annotation, "string"), "default": field.default,
                      "description": description}  # fmt: skip
    keys = list(declared)
    at = max((i + 1 for i, key in enumerate(keys) if key.startswith("service.")), default=len(keys))
    return {**{k: declared[k] for k in keys[:at]}, **specs, **{k: declared[k] for k in keys[at:]}}


def _replace(text: str, begin: str, end: str, body: str) -> str:
    block = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    return block.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def render(text: str) -> str:
    """TEXT with its settings block (and its config block, if any) replaced by the current tables."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"expected one {BEGIN} ... {END} block")
    text = _replace(text, BEGIN, END, table())
    return _replace(text, CONFIG_BEGIN, CONFIG_END, config_table()) if CONFIG_BEGIN in text else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.devtools.settings_docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a doc is out of date instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        if (fresh := render(text)) != text:
            stale.append(doc.relative_to(ROOT))
            if not args.check:
                doc.write_text(fresh)
    verb = "out of date" if args.check else "updated"
    for doc in stale:
        print(f"{doc}: settings table {verb}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
