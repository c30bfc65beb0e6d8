"""A stand-in `pulumi` CLI for the rehearsal (tests only, never shipped).

No Pulumi CLI can be installed on these machines (ENGINES.md), so `pulumi.automation`, unpatched, drives
this instead: put `tests/rehearsal/standin_pulumi/bin` first on PATH. It implements only the commands and
flags the installed Automation API invokes on modelship's paths, keeps its state in a `file://` backend
folder like `pulumi login file://`, merges config as the engine does (pkg/workspace/config.go), runs the real
infra program under `pulumi.runtime` mocks, and applies the modelship Deployment to this machine as a local
service process. Everything else exits non-zero with "not implemented by the stand-in".
"""

STANDIN = "pulumi stand-in (modelship rehearsal)"
