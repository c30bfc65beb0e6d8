"""uv.lock is the one source of installed versions: `make lock-check` (part of `make test`) fails when
pyproject.toml and the lock disagree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".venv" / "bin" / "uv"


def lock_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(UV), "lock", "--check", "--offline"], cwd=folder, capture_output=True, text=True)


def project_copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_lock_matches_pyproject(tmp_path: Path) -> None:
    done = lock_check(project_copy(tmp_path))
    assert done.returncode == 0, done.stderr


def test_a_dependency_missing_from_the_lock_fails_the_check(tmp_path: Path) -> None:
    folder = project_copy(tmp_path)
    pyproject = (folder / "pyproject.toml").read_text()
    assert '  "orjson>=3.10",\n' in pyproject
    (folder / "pyproject.toml").write_text(pyproject.replace('  "orjson>=3.10",\n', ""))
    done = lock_check(folder)
    assert done.returncode != 0
    assert "needs to be updated" in done.stderr or "does not match" in done.stderr, done.stderr
