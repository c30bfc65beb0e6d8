"""Every CLI answers bad input with one line on stderr that names the fix, and exit code 2: no traceback.

Each case runs the real command, `python -m <cli> ...`, as a newcomer would type it (forked: see DRIVER).
"""

from __future__ import annotations

import json
import subprocess  # nosec B404
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ART = "{artifact}"  # the session's iris artifact
BAD = [
    # python -m model
    ("model", "train --recipe nope", "invalid choice: 'nope'"),
    ("model", "train --set foo=1", "has no parameter 'foo'"),
    ("model", "train --set alpha=abc", "alpha takes a number"),
    ("model", "train --set alpha", "--set expects KEY=VALUE"),
    ("model", "evaluate /nope", "/nope/manifest.json does not exist"),
    ("model", "bogus", "invalid choice: 'bogus'"),
    # python -m pipelines
    ("pipelines", "", "required: STAGE"),
    ("pipelines", "trian", "invalid choice: 'trian'"),
    ("pipelines", "train --recipe nope", "invalid choice: 'nope'"),
    ("pipelines", "train --recipe house-price --set foo=1", "it takes alpha, n_samples, noise"),
    ("pipelines", "train --recipe house-price --set alpha=abc", "alpha takes a number"),
    ("pipelines", "train --recipe iris --set max_depth=0", "max_depth must be at least 1"),
    ("pipelines", "train --recipe iris --seed x", "invalid int value: 'x'"),
    ("pipelines", "gate --candidate /nope", "/nope/manifest.json does not exist"),
    ("pipelines", f"gate --candidate {ART} --floor r2=abc", "a floor is a number"),
    ("pipelines", f"gate --candidate {ART} --baseline {ART} --stack dev", "not both"),
    ("pipelines", "deploy --stack dev --artifact /nope", "refusing to deploy /nope"),
    ("pipelines", f"deploy --stack a/b --artifact {ART}", "invalid stack name"),
    ("pipelines", f"deploy --stack dev --artifact {ART} --target nope", "invalid choice: 'nope'"),
    ("pipelines", "history --stack nope", "`make up` serves outside the stacks"),
    ("pipelines", "history --stack dev --limit x", "invalid int value"),
    ("pipelines", "rollback --stack nope", "has no deployment yet"),
    ("pipelines", "promote --from nope --to staging", "has no deployment yet"),
    ("pipelines", "smoke", "give --url, or --stack"),
    ("pipelines", "smoke --stack nope", "has no deployment yet"),
    ("pipelines", "loadcheck --url http://127.0.0.1:9 --profile nope", "unknown profile 'nope'"),
    ("pipelines", "destroy --stack prod --target pulumi", "only ephemeral stacks"),
    ("pipelines", "canary --stack dev", "canary needs --artifact DIR"),
    ("pipelines", "canary --stack dev --artifact /nope", "refusing to deploy /nope"),
    ("pipelines", f"canary --stack dev --artifact {ART} --steps 10,x", "--steps takes percents"),
    ("pipelines", f"canary --stack dev --artifact {ART} --steps 50,10", "weights must increase"),
    ("pipelines", f"canary --stack dev --artifact {ART} --policy /nope", "cannot read canary policy /nope"),
    ("pipelines", f"canary --stack dev --artifact {ART} --target pulumi", "a pulumi deploy needs --image"),
    ("pipelines", f"canary --stack nope --artifact {ART}", "has no deployment yet"),
    ("pipelines", "canary abort --stack nope", "has no deployment yet"),
    ("pipelines", "release --stack dev --artifact /nope", "/nope/manifest.json does not exist"),
    ("pipelines", "release --stack dev --set foo=1", "has no parameter 'foo'"),
    # python -m pipelines quality
    ("pipelines", "quality", "give --stack (with --target) or --database-url"),
    ("pipelines", "quality --stack nope", "`make up` serves outside the stacks"),
    ("pipelines", "quality --database-url http://127.0.0.1:9/db", "is not a postgresql://"),
    ("pipelines", "quality --database-url postgresql://u@127.0.0.1:9/db", "cannot connect to"),
    ("pipelines", "quality --database-url postgresql://u@127.0.0.1:9/db --window 5x", "--window '5x'"),
    # python -m pipelines drift
    ("pipelines", "drift", "give --stack (with --target) or --database-url"),
    ("pipelines", "drift --stack nope", "has no deployment yet"),
    ("pipelines", "drift --stack dev --window 5x", "give a positive whole number and a unit s, m, h or d"),
    ("pipelines", "drift --stack dev --source LIVE!", "is not a source name"),
    ("pipelines", "drift --database-url http://127.0.0.1:9/x", "is not a postgresql://"),
    ("pipelines", "drift --database-url postgresql://u:pw@127.0.0.1:9/x", "cannot connect to postgresql://u:***@"),
    # python -m pipelines shadow
    ("pipelines", "shadow nope", "invalid choice: 'nope'"),
    ("pipelines", "shadow start", "shadow start needs --stack"),
    ("pipelines", "shadow start --stack dev", "needs --artifact DIR and --sample FRACTION"),
    ("pipelines", f"shadow start --stack dev --artifact {ART} --sample 2", "--sample is a fraction above 0"),
    ("pipelines", f"shadow start --stack dev --artifact {ART} --sample x", "invalid float value: 'x'"),
    ("pipelines", "shadow start --stack dev --artifact /nope --sample 0.5", "refusing to shadow /nope"),
    ("pipelines", f"shadow start --stack nope --artifact {ART} --sample 0.5", "has no deployment yet"),
    ("pipelines", f"shadow start --stack dev --artifact {ART} --sample 0.5 --target pulumi", "--image is required"),
    ("pipelines", "shadow stop --stack nope", "has no deployment yet"),
    ("pipelines", "shadow report", "give --database-url, or --stack"),
    ("pipelines", "shadow report --stack nope", "has no deployment yet"),
    ("pipelines", "shadow report --database-url postgresql://x@127.0.0.1:9/x", "cannot read the prediction log"),
    ("pipelines", "promote --from nope --to prod --require-shadow-agreement x", "invalid float value: 'x'"),
    ("pipelines", "promote --from nope --to prod --require-shadow-agreement 0.1", "has no deployment yet"),
    # the dev tools and the manifests
    ("pipelines.devtools", "up --recipe nope", "unknown recipe 'nope'"),
    ("pipelines.devtools", "up --model /nope", "/nope/manifest.json does not exist"),
    ("infra.render", "--stack nope --out /tmp/x", "stacks here: dev, prod, staging"),
]


# Each case is the real `python -m <cli> ...`: `runpy` runs the package's __main__ as the interpreter would, in a
# process forked from one that imported the packages once (a fresh interpreter per case cost ~3 s of imports).
DRIVER = r"""
import json, os, runpy, sys, traceback
cases = json.loads(sys.stdin.read())
import importlib, pkgutil
import model, pipelines  # every module imported once, so each fork starts with them (the CLIs import lazily)
for package in (model, pipelines):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
results = []
for case in cases:
    err = os.path.join(case["tmp"], "stderr")
    pid = os.fork()
    if pid == 0:
        os.environ.update(case["env"])
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        sys.argv = [case["cli"], *case["argv"]]
        code = 0
        try:
            runpy.run_module(case["cli"], run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    results.append({"code": os.waitstatus_to_exitcode(status), "stderr": open(err).read()})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def answers(iris_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, object]]:
    cases = []
    for cli, args, _ in BAD:
        tmp = tmp_path_factory.mktemp("bad")
        env = {
            "MODELSHIP_PIPELINE_STATE_DIR": str(tmp / "state"),  # no local stack exists
            "MODELSHIP_PIPELINE_ARTIFACTS_DIR": str(tmp / "artifacts"),
            "MODELSHIP_DATA_DIR": str(tmp / "data"),
        }
        argv = [a.replace(ART, str(iris_artifact)) for a in args.split()]
        cases.append({"cli": cli, "argv": argv, "env": env, "tmp": str(tmp)})
    done = subprocess.run([sys.executable, "-c", DRIVER], cwd=ROOT, input=json.dumps(cases), capture_output=True,
                          text=True, timeout=600, check=True)  # fmt: skip
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {(cli, args): result for (cli, args, _), result in zip(BAD, results, strict=True)}


@pytest.mark.parametrize(("cli", "args", "says"), BAD, ids=[f"{c} {a}" for c, a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(cli: str, args: str, says: str, answers: dict[tuple[str, str], Any]) -> None:
    done = answers[(cli, args)]
    lines = done["stderr"].splitlines()
    assert "Traceback" not in done["stderr"], done["stderr"]
    assert done["code"] == 2, done["stderr"]
    assert len(lines) == 1, done["stderr"]
    assert says in lines[0]


@pytest.mark.parametrize("cli", ["model", "pipelines"])
def test_the_entry_points_themselves_answer_in_one_line(cli: str, tmp_path: Path) -> None:
    """The same, through a fresh `python -m` (what the forked cases stand for), once per CLI."""
    done = subprocess.run([sys.executable, "-m", cli, "bogus"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "invalid choice: 'bogus'" in done.stderr and "Traceback" not in done.stderr


def test_help_imports_no_stage_and_lists_the_recipes_parameters() -> None:
    heavy = ("sklearn", "pulumi", "psycopg", "httpx", "pydantic_settings", "pipelines.train")
    probe = (
        "import sys, contextlib, io\n"
        "from pipelines.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r} or m in {heavy!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
    train_help = subprocess.run(
        [sys.executable, "-m", "pipelines", "train", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for line in ("house-price (regression):", "alpha=0.0", "iris (classification):", "max_depth=null"):
        assert line in train_help
