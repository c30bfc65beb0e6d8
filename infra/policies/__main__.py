"""Entry point the Pulumi policy analyzer runs: `pulumi preview --policy-pack infra/policies`."""

import sys
from pathlib import Path

# The analyzer runs this folder as a script; make the `infra` package importable from the repo root.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)

from pulumi_policy import PolicyPack  # noqa: E402

from infra.policies.pack import PACK_NAME, policies  # noqa: E402

if __name__ == "__main__":
    # PolicyPack serves the analyzer over gRPC until the engine stops it.
    PolicyPack(name=PACK_NAME, policies=list(policies()))
