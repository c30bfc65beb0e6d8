"""KEY=VALUE command-line arguments (`--set`, `--floor`, `--config`), parsed the same way by every CLI."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def parse_pairs(items: Iterable[str], option: str, parse_json: bool = True) -> dict[str, Any]:
    """KEY=VALUE items as a dict; values are JSON when they parse (numbers, booleans, null) unless
    parse_json is False. Raises ValueError naming `option` for an item without "=".
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"{option} expects KEY=VALUE, got {item!r}")
        result[key] = _json_or_text(raw) if parse_json else raw
    return result


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
