"""Stand-in for GitHub's environment protection rules, run as a job's first step by tests/rehearsal/act.py.

GitHub checks, before a job that names an environment starts: the deployment branch policy (may this
ref deploy there?) and the required reviewers (has someone approved this run?). A rejected or disallowed
job fails. act has neither, so this step does both from the rules the rehearsal declares.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys


def main() -> int:
    name = os.environ["STANDIN_ENVIRONMENT"]
    rules = json.loads(os.environ["STANDIN_RULES"])
    approved = set(json.loads(os.environ["STANDIN_APPROVED"]))
    if name not in rules:
        print(f"::error::stand-in environment protection: environment {name!r} does not exist in this repository")
        return 1
    rule = rules[name]
    ref = os.environ.get("GITHUB_REF", "")
    branch = ref.removeprefix("refs/heads/")
    if rule["branches"] is not None and not (
        ref.startswith("refs/heads/") and any(fnmatch.fnmatch(branch, p) for p in rule["branches"])
    ):
        print(f"::error::stand-in environment protection: {ref} is not allowed to deploy to {name}")
        return 1
    if rule["reviewers"] and name not in approved:
        print(f"::error::stand-in environment protection: {name} needs a reviewer's approval; none given")
        return 1
    print(f"stand-in environment protection: {name} for {ref}" + (" (approved)" if rule["reviewers"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
