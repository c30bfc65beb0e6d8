"""The house the imports draw: each package imports only the packages below it, so no cycle and no arrow back up.

model (artifact contract) < service (serving) < loadtest and infra < pipelines (which drives all of them).
Function-level imports count too: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BELOW: dict[str, set[str]] = {
    "model": set(),
    "service": {"model"},
    "loadtest": {"model", "service"},
    "infra": {"model", "service"},
    "pipelines": {"model", "service", "loadtest", "infra"},
}


def arrows(package: str) -> set[tuple[str, str]]:
    """(module file, imported top-level package) for every import of another of our packages."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in BELOW and top != package:
                    found.add((str(path.relative_to(ROOT)), top))
    return found


def test_every_import_points_down() -> None:
    upward = sorted((where, target) for package in BELOW for where, target in arrows(package)
                    if target not in BELOW[package])  # fmt: skip
    assert upward == [], f"imports running back up or sideways: {upward}"


def test_the_check_sees_real_arrows() -> None:
    assert ("service/app.py", "model") in arrows("service")
    assert any(target == "loadtest" for _, target in arrows("pipelines"))


def test_the_gate_does_not_import_the_bench() -> None:
    """loadtest/'s top level is the release gate the pipelines import; loadtest/bench/ may use it, never the reverse."""
    gate = list((ROOT / "loadtest").glob("*.py"))
    into_bench = sorted(
        str(path.relative_to(ROOT))
        for path in gate
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loadtest.bench"))
        or (isinstance(node, ast.Import) and any(a.name.startswith("loadtest.bench") for a in node.names))
    )
    assert gate and into_bench == [], f"gate modules importing the bench: {into_bench}"
