"""The house the imports draw: each package imports only the packages below it, so no cycle and no arrow back up.

model (artifact contract) < service (serving) < loadtest and infra < pipelines (which drives all of them).
Function-level imports count too: a lazy import is still an arrow.

The dev tools (embedded Postgres, `make up`/`down`, `make monitor`, `make docs`) live in one place,
pipelines/devtools/. The embedded Postgres is a layer of its own at the very bottom: it imports none of our
packages, so the bench (loadtest/bench) may start one without loadtest importing the rest of pipelines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVTOOLS = "pipelines/devtools"
EMBEDDED_PG = "pipelines.devtools.embedded_pg"
BELOW: dict[str, set[str]] = {
    EMBEDDED_PG: set(),
    "model": set(),
    "service": {"model"},
    "loadtest": {"model", "service", EMBEDDED_PG},
    "infra": {"model", "service"},
    "pipelines": {"model", "service", "loadtest", "infra", EMBEDDED_PG},
}


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to: the most specific BELOW key it is, or is inside."""
    return max((k for k in BELOW if module == k or module.startswith(f"{k}.")), key=len, default=None)


def files(layer: str) -> list[Path]:
    """The source files of LAYER, without those of a more specific layer inside it."""
    base = ROOT / layer.replace(".", "/")
    paths = [base.with_suffix(".py")] if base.with_suffix(".py").is_file() else sorted(base.rglob("*.py"))
    dotted = {p: ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in paths}
    return [p for p in paths if layer_of(dotted[p]) == layer]


def arrows(layer: str) -> set[tuple[str, str]]:
    """(module file, imported layer) for every import of another of our layers."""
    found = set()
    for path in files(layer):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                target = layer_of(name)
                if target is not None and target != layer:
                    found.add((str(path.relative_to(ROOT)), target))
    return found


def test_every_import_points_down() -> None:
    upward = sorted((where, target) for layer in BELOW for where, target in arrows(layer)
                    if target not in BELOW[layer])  # fmt: skip
    assert upward == [], f"imports running back up or sideways: {upward}"


def test_the_check_sees_real_arrows() -> None:
    assert ("service/app.py", "model") in arrows("service")
    assert any(target == "loadtest" for _, target in arrows("pipelines"))
    assert any(target == EMBEDDED_PG for _, target in arrows("loadtest"))  # the bench
    assert files(EMBEDDED_PG) == [ROOT / "pipelines/devtools/embedded_pg.py"]
    assert ROOT / "pipelines/devtools/embedded_pg.py" not in files("pipelines")


def test_dev_tools_live_in_one_place() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("up", "down", "monitor", "docs"):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
        assert recipe, f"make {target} is gone"
        modules = re.findall(r"-m ([\w.]+)", recipe.group(1))
        assert modules and all(m.startswith("pipelines.devtools") for m in modules), (target, modules)
    # pgserver (the embedded Postgres's binaries) and a Prometheus launcher belong to dev tools only.
    for package in ("model", "service", "loadtest", "infra", "pipelines"):
        for path in (ROOT / package).rglob("*.py"):
            where = path.relative_to(ROOT).as_posix()
            text = path.read_text()
            if not where.startswith(DEVTOOLS):
                assert "pgserver." not in text and 'which("prometheus")' not in text, where


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
