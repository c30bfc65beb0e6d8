"""`make docs`: the service's settings table in README.md and docs/architecture.md, rendered from the code.

service/settings.py is the one place a setting is declared (name, default, description); the docs hold
a copy between `<!-- settings:begin -->` and `<!-- settings:end -->` that this writes, and
tests/service/test_settings_docs.py fails when a committed copy differs from what this renders.
"""

from __future__ import annotations

import argparse
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", ROOT / "docs" / "architecture.md")
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)


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


def render(text: str) -> str:
    """TEXT with its settings block replaced by the current table."""
    if len(_BLOCK.findall(text)) != 1:
        raise ValueError(f"expected one {BEGIN} ... {END} block")
    return _BLOCK.sub(lambda _: f"{BEGIN}\n{table()}\n{END}", text)


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
