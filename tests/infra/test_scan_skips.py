"""`make scan` runs checkov with no skip on its command line: every skip is inline, where the object is
declared, and says why. This checks the second half (checkov itself accepts a skip without a reason)."""

from __future__ import annotations

import re
from pathlib import Path

from infra.components import workload

ROOT = Path(__file__).resolve().parents[2]
INLINE = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?$", re.M)
REASON_MIN = 30  # characters: a sentence, not "false positive"


def scanned_sources() -> list[Path]:
    return [ROOT / "Dockerfile", *sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))]


def test_inline_skips_in_the_dockerfile_and_workflows_give_a_reason() -> None:
    for path in scanned_sources():
        for check, reason in INLINE.findall(path.read_text()):
            assert len(reason.strip()) >= REASON_MIN, f"{path.name}: skip of {check} needs a reason"


def test_kubernetes_skips_give_a_reason() -> None:
    for key, value in workload.CHECKOV_SECRET_ENV_SKIP.items():
        assert re.fullmatch(r"checkov\.io/skip\d+", key)
        check, reason = value.split("=", 1)
        assert re.fullmatch(r"CKV_K8S_\d+", check) and len(reason) >= REASON_MIN


def test_the_makefile_skips_nothing_itself() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "checkov" in makefile
    for flag in ("--skip-check", "--soft-fail", "--skip-framework", "--skip-path", "--baseline"):
        assert flag not in makefile
