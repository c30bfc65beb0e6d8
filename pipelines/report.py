"""What stages hand back to people and machines: JSON records and plain-text tables."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from model.train import git_commit
from pipelines.settings import REPO_ROOT


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_jsonable(result: Any) -> Any:
    """A stage result (a dataclass tree) as plain JSON data."""
    is_instance = dataclasses.is_dataclass(result) and not isinstance(result, type)
    data = dataclasses.asdict(result) if is_instance else result
    return json.loads(json.dumps(data, default=_default))


def write_record(path: Path, stage: str, result: Any, passed: bool) -> None:
    """Write the JSON record of one stage run (`--record PATH`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"stage": stage, "passed": passed, "result": to_jsonable(result)}
    path.write_text(json.dumps(record, indent=2, default=_default) + "\n")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A left-aligned text table that reads well in a terminal, a CI log and a PR comment's code block."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in (headers, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def short_digest(ref: str | None) -> str:
    """`registry/modelship@sha256:abcdef…` -> `sha256:abcdef123456` (what a person compares by eye)."""
    if not ref:
        return "-"
    digest = ref.rsplit("@", 1)[-1]
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]


def git_head() -> str | None:
    """The commit of this checkout, for update messages and history environments (None outside git)."""
    return git_commit(cwd=REPO_ROOT)
