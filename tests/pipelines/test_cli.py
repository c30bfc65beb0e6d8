"""The CLI is thin: stage names, exit codes, stdout for results, JSON records."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
from pathlib import Path

import pytest

import pipelines
from pipelines.cli import STAGES, build_parser, main, stage_names, stages
from pipelines.commands import default_message


def _documented_stages() -> dict[str, str]:
    """Module -> stage name, for every module whose docstring opens with "Stage `name`:" (how stages are written)."""
    found = {}
    for info in pkgutil.iter_modules(pipelines.__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        doc = importlib.import_module(f"pipelines.{info.name}").__doc__ or ""
        if match := re.match(r"Stage `([a-z-]+)`:", doc):
            found[info.name] = match.group(1)
    return found


def test_every_stage_module_registers_its_subcommand() -> None:
    documented = _documented_stages()
    assert len(documented) >= 10  # the discovery itself works: train ... destroy
    assert stage_names() == sorted(documented.values())
    for module, name in documented.items():
        stage = importlib.import_module(f"pipelines.{module}").STAGE
        assert stage.name == name == module  # cli.load_stage finds a stage's module by its name
    # `--help` lists stages from cli.STAGES without importing them: it must say what each module declares.
    assert STAGES == {s.name: s.help for s in stages()}
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {name: choices[name].get_default("handler") for name in choices} == {s.name: s.run for s in stages()}


@pytest.mark.parametrize("stage", ["deploy", "smoke", "loadcheck", "promote", "history", "rollback", "release"])
def test_stack_touching_stages_take_target(stage: str) -> None:
    help_text = build_parser()._subparsers._group_actions[0].choices[stage].format_help()  # type: ignore[union-attr]
    assert "--target {local,pulumi}" in help_text


def test_train_prints_key_values_and_writes_a_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "train.json"
    code = main(
        ["train", "--recipe", "iris", "--out", str(tmp_path / "a"), "--set", "n_estimators=5", "--record", str(record)]
    )
    assert code == 0
    out = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert Path(out["path"]).is_dir() and out["version"].startswith("iris-")
    data = json.loads(record.read_text())
    assert data["stage"] == "train" and data["passed"] and data["result"]["version"] == out["version"]


def test_gate_exit_code_follows_the_verdict(
    v1_artifact: Path, v2_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = ["gate", "--candidate", str(v2_artifact), "--baseline", str(v1_artifact)]
    assert main(ok) == 0
    assert "result: PASS" in capsys.readouterr().out
    record = tmp_path / "gate.json"
    assert main([*ok, "--floor", "r2=0.999", "--record", str(record)]) == 1
    assert "result: FAIL" in capsys.readouterr().out
    data = json.loads(record.read_text())
    assert data["passed"] is False and any(c["name"] == "r2 floor" for c in data["result"]["checks"])


def test_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--candidate", str(tmp_path / "nope")]) == 2  # a bad request: fix the command
    assert "error: manifest:" in capsys.readouterr().err


def test_a_tampered_artifact_is_not_deployed(
    v1_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = tmp_path / v1_artifact.name
    shutil.copytree(v1_artifact, tampered)
    with (tampered / "model.joblib").open("ab") as f:
        f.write(b"\0")
    assert main(["deploy", "--stack", "dev", "--artifact", str(tampered)]) == 2
    assert "refusing to deploy" in capsys.readouterr().err


def test_default_message_names_the_pr_or_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/42/merge")
    assert default_message("deploy x") == "deploy x (PR #42 git 0123456789ab)"
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")
    assert default_message("deploy x") == "deploy x (git 0123456789ab)"
