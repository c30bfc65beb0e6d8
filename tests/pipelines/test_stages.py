"""Stage logic (deploy, release, promote, rollback, destroy) through the in-memory target."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.deploy import deploy
from pipelines.destroy import destroy
from pipelines.errors import ConfigError, NothingToRollBackError, StackBusyError, StageError
from pipelines.gate import GatePolicy
from pipelines.promote import promote
from pipelines.release import ReleaseResult, release
from pipelines.rollback import rollback
from pipelines.targets.base import ARTIFACT_DIR_KEY, IMAGE_REF_KEY, MODEL_VERSION_KEY, PROTECT_KEY, deployed_update
from pipelines.verify import VerifyOptions
from tests.pipelines.fakes import FakeChecks, FakeTarget


def image(artifact: Path) -> str:
    manifest = json.loads((artifact / "manifest.json").read_text())
    return f"ghcr.io/acme/modelship@sha256:{manifest['artifact']['sha256']}"


@pytest.fixture
def options(tmp_path: Path) -> VerifyOptions:
    return VerifyOptions(profile="local", out_dir=tmp_path / "reports", duration_s=1)


def run_release(
    target: FakeTarget,
    artifact: Path,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    stack: str = "dev",
) -> ReleaseResult:
    return release(
        target,
        stack,
        message=f"release {artifact.name}",
        policy=policy,
        verify_options=options,
        artifact=artifact,
        image_ref=image(artifact),
        checkers=checks.checkers(target),
    )


def live_version(target: FakeTarget, stack: str) -> str | None:
    current = deployed_update(target.select(stack).history())
    return current.model_version if current else None


def test_first_release_then_an_upgrade(
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    v2_artifact: Path,
) -> None:
    first = run_release(fake_target, v1_artifact, checks, options, policy)
    assert first.passed and first.gate is not None and first.gate.baseline_version is None
    second = run_release(fake_target, v2_artifact, checks, options, policy)
    assert second.passed, second
    assert second.gate is not None and second.gate.baseline_version == v1_artifact.name
    updates = fake_target.select("dev").history()
    assert [u.model_version for u in updates] == [v2_artifact.name, v1_artifact.name]
    assert updates[0].annotations == {"smoke": "pass", "loadcheck": "pass"}
    assert updates[0].config[IMAGE_REF_KEY] == image(v2_artifact)
    assert checks.calls == [
        ("smoke", v1_artifact.name),
        ("loadcheck", v1_artifact.name),
        ("smoke", v2_artifact.name),
        ("loadcheck", v2_artifact.name),
    ]


@pytest.mark.parametrize("failing", ["smoke", "loadcheck"])
def test_failed_check_after_deploy_rolls_back(
    failing: str,
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    v2_artifact: Path,
) -> None:
    run_release(fake_target, v1_artifact, checks, options, policy)
    (checks.bad_smoke if failing == "smoke" else checks.bad_load).add(v2_artifact.name)
    result = run_release(fake_target, v2_artifact, checks, options, policy)
    assert not result.passed and result.failed_stage == failing
    assert result.rollback is not None
    assert (result.rollback.from_version, result.rollback.to_version) == (v2_artifact.name, v1_artifact.name)
    assert result.rollback.passed
    assert live_version(fake_target, "dev") == v1_artifact.name
    updates = fake_target.select("dev").history()
    assert [u.number for u in updates] == [3, 2, 1]
    assert updates[1].annotations[failing] == "fail"
    assert updates[0].config[IMAGE_REF_KEY] == image(v1_artifact)  # the digest is re-applied too


def test_failed_deploy_rolls_back(
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    v2_artifact: Path,
) -> None:
    run_release(fake_target, v1_artifact, checks, options, policy)
    fake_target.select("dev").fail_up.add(v2_artifact.name)
    result = run_release(fake_target, v2_artifact, checks, options, policy)
    assert not result.passed and result.failed_stage == "deploy"
    assert result.rollback is not None and result.rollback.to_version == v1_artifact.name
    assert [u.result for u in fake_target.select("dev").history()] == ["succeeded", "failed", "succeeded"]


def test_failed_gate_changes_nothing(
    fake_target: FakeTarget, checks: FakeChecks, options: VerifyOptions, v1_artifact: Path, v2_artifact: Path
) -> None:
    run_release(fake_target, v1_artifact, checks, options, GatePolicy())
    strict = GatePolicy(floors={"r2": 0.999})
    result = run_release(fake_target, v2_artifact, checks, options, strict)
    assert not result.passed and result.failed_stage == "gate" and result.deploy is None
    assert len(fake_target.select("dev").history()) == 1


def test_first_release_that_fails_has_nothing_to_return_to(
    fake_target: FakeTarget, checks: FakeChecks, options: VerifyOptions, policy: GatePolicy, v1_artifact: Path
) -> None:
    checks.bad_smoke.add(v1_artifact.name)
    result = run_release(fake_target, v1_artifact, checks, options, policy)
    assert not result.passed and result.rollback is None
    assert result.error is not None and "nothing to roll back" in result.error


def test_busy_stack_is_not_rolled_back(
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    v2_artifact: Path,
) -> None:
    run_release(fake_target, v1_artifact, checks, options, policy)
    fake_target.select("dev").busy = True
    with pytest.raises(StackBusyError):
        run_release(fake_target, v2_artifact, checks, options, policy)
    assert len(fake_target.select("dev").history()) == 1  # someone else's update is not ours to undo


def test_release_trains_when_no_artifact_is_given(
    fake_target: FakeTarget, checks: FakeChecks, options: VerifyOptions, policy: GatePolicy, tmp_path: Path
) -> None:
    from pipelines.release import TrainSpec

    result = release(
        fake_target,
        "dev",
        message="m",
        policy=policy,
        verify_options=options,
        train_spec=TrainSpec("iris", tmp_path, overrides={"n_estimators": 5}),
        image_ref="r/m@sha256:" + "0" * 64,
        checkers=checks.checkers(fake_target),
    )
    assert result.passed and result.train is not None and result.model_version == result.train.version
    with pytest.raises(ConfigError):
        release(fake_target, "dev", message="m", policy=policy, verify_options=options)


def test_promote_copies_the_verified_digest_and_artifact(
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    tmp_path: Path,
) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(v1_artifact, copy)
    run_release(fake_target, copy, checks, options, policy, stack="staging")
    shutil.rmtree(copy)  # promotion must not need (or rebuild) the artifact: it copies what staging ran
    result = promote(fake_target, "staging", "prod", verify_options=options, checkers=checks.checkers(fake_target))
    assert result.passed
    staging = fake_target.select("staging").history()[0]
    prod = fake_target.select("prod").history()[0]
    for key in (MODEL_VERSION_KEY, IMAGE_REF_KEY, ARTIFACT_DIR_KEY):
        assert prod.config[key] == staging.config[key]
    assert prod.message == f"promote {v1_artifact.name} from staging (update #1)"
    assert prod.annotations == {"smoke": "pass", "loadcheck": "pass"}


def test_promote_refuses_an_unverified_source(fake_target: FakeTarget, checks: FakeChecks, v1_artifact: Path) -> None:
    with pytest.raises(StageError, match="does not exist"):
        promote(fake_target, "staging", "prod")
    deploy(fake_target, "staging", v1_artifact, message="deploy", image_ref=image(v1_artifact))
    with pytest.raises(StageError, match="not verified"):
        promote(fake_target, "staging", "prod")
    assert "prod" not in fake_target.stacks


def test_promote_rolls_back_the_destination_when_its_checks_fail(
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    v2_artifact: Path,
) -> None:
    for artifact in (v1_artifact, v2_artifact):
        run_release(fake_target, artifact, checks, options, policy, stack="staging")
    promote(fake_target, "staging", "prod", verify_options=options, checkers=checks.checkers(fake_target))
    run_release(fake_target, v1_artifact, checks, options, policy, stack="staging")  # staging back to v1
    checks.bad_load.add(v1_artifact.name)
    result = promote(fake_target, "staging", "prod", verify_options=options, checkers=checks.checkers(fake_target))
    assert not result.passed and result.rollback is not None
    assert live_version(fake_target, "prod") == v2_artifact.name


def test_first_promotion_that_fails_has_nothing_to_return_to(
    fake_target: FakeTarget, checks: FakeChecks, options: VerifyOptions, policy: GatePolicy, v1_artifact: Path
) -> None:
    run_release(fake_target, v1_artifact, checks, options, policy, stack="staging")
    checks.bad_load.add(v1_artifact.name)  # passes on staging (checked already), fails on prod
    result = promote(fake_target, "staging", "prod", verify_options=options, checkers=checks.checkers(fake_target))
    assert not result.passed and result.rollback is None
    assert result.error is not None and "nothing to roll back" in result.error
    assert live_version(fake_target, "prod") == v1_artifact.name  # reported, not undone: there is nothing earlier


def test_rollback_reports_from_and_to_and_smokes_the_result(
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    v2_artifact: Path,
) -> None:
    with pytest.raises(StageError):
        rollback(fake_target, "dev")
    run_release(fake_target, v1_artifact, checks, options, policy)
    with pytest.raises(NothingToRollBackError):
        rollback(fake_target, "dev", checkers=checks.checkers(fake_target))
    run_release(fake_target, v2_artifact, checks, options, policy)
    result = rollback(fake_target, "dev", checkers=checks.checkers(fake_target))
    assert (result.from_version, result.to_version) == (v2_artifact.name, v1_artifact.name)
    assert (result.from_image, result.to_image) == (image(v2_artifact), image(v1_artifact))
    assert (result.source_update, result.new_update) == (1, 3) and result.passed
    assert checks.calls[-1] == ("smoke", v1_artifact.name)
    assert f"{v2_artifact.name} -> {v1_artifact.name}" in result.summary()
    again = rollback(fake_target, "dev", to_version=v2_artifact.name, checkers=checks.checkers(fake_target))
    assert again.to_version == v2_artifact.name and again.source_update == 2


def test_rollback_whose_smoke_fails_does_not_pass(
    fake_target: FakeTarget,
    checks: FakeChecks,
    options: VerifyOptions,
    policy: GatePolicy,
    v1_artifact: Path,
    v2_artifact: Path,
) -> None:
    for artifact in (v1_artifact, v2_artifact):
        run_release(fake_target, artifact, checks, options, policy)
    checks.bad_smoke.add(v1_artifact.name)
    result = rollback(fake_target, "dev", checkers=checks.checkers(fake_target))
    assert not result.passed
    assert fake_target.select("dev").history()[0].annotations["smoke"] == "fail"


def test_destroy_only_ephemeral_stacks(fake_target: FakeTarget, v1_artifact: Path) -> None:
    for name in ("dev", "staging", "prod"):
        with pytest.raises(ConfigError, match="only ephemeral"):
            destroy(fake_target, name)
    deploy(fake_target, "pr-12", v1_artifact, message="PR #12", image_ref=image(v1_artifact))
    destroy(fake_target, "pr-12")
    assert fake_target.stacks["pr-12"].destroyed


def test_extra_stack_config_goes_with_the_deploy(fake_target: FakeTarget, v1_artifact: Path) -> None:
    deploy(
        fake_target,
        "pr-7",
        v1_artifact,
        message="PR #7",
        image_ref=image(v1_artifact),
        extra_config={"db.installOperator": "false", "kubernetes:namespace": "x"},
    )
    config = fake_target.select("pr-7").history()[0].config
    assert config["modelship:db.installOperator"] == "false"
    assert config["kubernetes:namespace"] == "x"
    assert config[MODEL_VERSION_KEY] == v1_artifact.name


def test_destroy_refuses_a_protected_stack_and_says_how_to_lift_it(fake_target: FakeTarget, v1_artifact: Path) -> None:
    deploy(fake_target, "pr-13", v1_artifact, message="PR #13", image_ref=image(v1_artifact))
    fake_target.select("pr-13").set_config({PROTECT_KEY: "true"})
    with pytest.raises(ConfigError, match=r"refusing to destroy pr-13: it sets modelship:protect=true") as caught:
        destroy(fake_target, "pr-13")
    assert "pulumi config set protect false --stack pr-13" in str(caught.value)
    assert not fake_target.stacks["pr-13"].destroyed
    fake_target.select("pr-13").set_config({PROTECT_KEY: "false"})
    destroy(fake_target, "pr-13")
    assert fake_target.stacks["pr-13"].destroyed
