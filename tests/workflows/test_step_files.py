"""A step that writes into a folder with `tee` or `>` finds it created: a fresh runner's checkout has no
reports/ (found by the rehearsal: rollback.yml's first step piped into `tee reports/rollback.txt`)."""

from __future__ import annotations

import re

from tests.workflows.test_workflows import WORKFLOWS, jobs

WRITES = re.compile(r"(?:\btee(?:\s+-a)?|>>?)\s+\"?([\w.-]+)/")
CREATES = re.compile(r"mkdir -p \"?([\w.-]+)|--(?:record|reports|out)\s+\"?([\w.-]+)/")


def test_folders_written_by_shell_redirections_exist_first() -> None:
    for path in WORKFLOWS:
        for name, job in jobs(path).items():
            created: set[str] = set()
            for step in job["steps"]:
                for line in step.get("run", "").splitlines():
                    for folder in WRITES.findall(line):
                        assert folder in created, f"{path.name}:{name}: `{line.strip()}` writes into {folder}/ first"
                    created |= {a or b for a, b in CREATES.findall(line)}
