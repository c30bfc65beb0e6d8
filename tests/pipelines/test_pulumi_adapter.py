"""The Pulumi adapter translates Automation API calls and errors; no Pulumi engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi import automation as auto

from pipelines.deploy import deploy
from pipelines.errors import ConfigError, StackBusyError, UpdateFailedError
from pipelines.settings import PipelineSettings
from pipelines.targets import get_target
from pipelines.targets.base import IMAGE_REF_KEY, MODEL_VERSION_KEY
from pipelines.targets.pulumi_target import PulumiStack, PulumiTarget
from tests.pipelines.fakes import StubAutoStack, command_error, concurrent_update_error, fixture

IMAGE = "ghcr.io/acme/modelship@sha256:" + "ab" * 32


class StubPulumiTarget(PulumiTarget):
    def __init__(self, stack: StubAutoStack) -> None:
        super().__init__(Path("."))
        self.stub = stack

    def select(self, stack: str, *, create: bool = False) -> PulumiStack:
        return PulumiStack(self.stub)  # type: ignore[arg-type]


@pytest.fixture
def stub() -> StubAutoStack:
    return StubAutoStack("dev", fixture("history_dev.json"), fixture("tags_dev.json"))


def test_up_sets_config_streams_output_and_returns_outputs(stub: StubAutoStack, v1_artifact: Path) -> None:
    lines: list[str] = []
    result = deploy(
        StubPulumiTarget(stub), "dev", v1_artifact, message="deploy v1", image_ref=IMAGE, on_output=lines.append
    )
    assert stub.config[MODEL_VERSION_KEY].value == v1_artifact.name
    assert stub.config[MODEL_VERSION_KEY].secret is False
    assert stub.config[IMAGE_REF_KEY].value == IMAGE
    assert stub.up_calls[0]["message"] == "deploy v1"
    assert lines == ["Updating (dev)"]
    assert result.url == "http://dev.example" and result.update == 7


def test_concurrent_update_is_refused_and_explained(stub: StubAutoStack, v1_artifact: Path) -> None:
    stub.up_error = concurrent_update_error()
    with pytest.raises(StackBusyError) as caught:
        deploy(StubPulumiTarget(stub), "dev", v1_artifact, message="deploy", image_ref=IMAGE)
    text = str(caught.value)
    assert "another update is already running on stack dev" in text
    assert "nothing changed" in text and "pulumi cancel" in text
    assert isinstance(caught.value.__cause__, auto.errors.ConcurrentUpdateError)


def test_a_failed_up_is_an_update_failed_error(stub: StubAutoStack, v1_artifact: Path) -> None:
    stub.up_error = command_error("error: update failed: Deployment modelship: 0/2 replicas available")
    with pytest.raises(UpdateFailedError, match="0/2 replicas"):
        deploy(StubPulumiTarget(stub), "dev", v1_artifact, message="deploy", image_ref=IMAGE)


def test_pulumi_deploys_need_an_image_pinned_by_digest(stub: StubAutoStack, v1_artifact: Path) -> None:
    with pytest.raises(ConfigError, match="needs --image"):
        deploy(StubPulumiTarget(stub), "dev", v1_artifact, message="deploy")
    with pytest.raises(ConfigError, match="pinned by digest"):
        deploy(StubPulumiTarget(stub), "dev", v1_artifact, message="deploy", image_ref="ghcr.io/acme/modelship:v1")
    assert not stub.up_calls


def test_annotations_are_stack_tags_and_survive_backends_without_tags(stub: StubAutoStack) -> None:
    stack = PulumiStack(stub)  # type: ignore[arg-type]
    stack.annotate(7, "smoke", "fail")
    assert stub.tags["modelship:u7:smoke"] == "fail"
    assert stack.history()[0].annotations["smoke"] == "fail"

    def no_tags(key: str, value: str) -> None:
        raise command_error("error: stack tags are not supported by the filestate backend")

    stub.set_tag = no_tags  # type: ignore[method-assign]
    stack.annotate(7, "loadcheck", "pass")  # logged, not raised


def test_get_target_builds_the_pulumi_target(tmp_path: Path) -> None:
    target = get_target("pulumi", PipelineSettings(pulumi_work_dir=tmp_path, pulumi_org="acme"))
    assert isinstance(target, PulumiTarget) and target.org == "acme"
    with pytest.raises(ConfigError):
        get_target("helm", PipelineSettings())


def test_cli_failures_become_stage_errors(stub: StubAutoStack, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.errors import StageError

    def broken(**kwargs: object) -> None:
        raise command_error("error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions")

    stack = PulumiStack(stub)  # type: ignore[arg-type]
    monkeypatch.setattr(stub, "history", broken)
    monkeypatch.setattr(stub, "outputs", broken)
    with pytest.raises(StageError, match="cannot read the history of dev"):
        stack.history()
    with pytest.raises(StageError, match="cannot read the outputs of dev"):
        stack.outputs()

    def missing_cli(**kwargs: object) -> None:
        raise FileNotFoundError(2, "No such file or directory", "pulumi")

    monkeypatch.setattr(auto, "select_stack", missing_cli)
    with pytest.raises(StageError, match="Pulumi CLI is not installed"):
        PulumiTarget(Path(".")).select("dev")
