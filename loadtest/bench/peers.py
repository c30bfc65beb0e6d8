"""Virtualenvs of the peer serving frameworks, one each: their pins conflict with ours and each other's.

KServe 0.21 downgrades psutil (which locust and pgserver use) and bumps protobuf (which pulumi
uses); MLServer 1.7.1's workers crash with uvloop 0.22 or later. So neither goes into the main
venv. Each peer venv holds the same scikit-learn and numpy as ours, so a peer loads the same
`model.joblib` and answers what scikit-learn answers here.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess  # nosec B404: runs uv with fixed arguments
import sys
from pathlib import Path

import numpy
import sklearn

logger = logging.getLogger("modelship.peers")
ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = ROOT / ".venv-peers"
REQUIREMENTS: dict[str, list[str]] = {
    "kserve": ["kserve==0.21.0"],
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"],
}


def requirements(peer: str) -> list[str]:
    return [*REQUIREMENTS[peer], f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}"]


def ensure_venv(peer: str, root: Path = PEERS_DIR) -> Path:
    """The python of `peer`'s own venv, created (idempotently) with uv on first use."""
    wanted = requirements(peer)
    venv = root / peer
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    logger.info("creating the %s venv in %s: %s", peer, venv, wanted)
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)  # nosec B603
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *wanted], check=True)  # nosec B603
    stamp.write_text(digest)
    return python


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.peers", description="Build the peers' venvs.")
    parser.add_argument("peers", nargs="*", choices=sorted(REQUIREMENTS), help="default: every peer")
    logging.basicConfig(level=logging.INFO)
    for name in parser.parse_args().peers or list(REQUIREMENTS):
        print(ensure_venv(name))
