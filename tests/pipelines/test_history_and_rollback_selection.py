"""History rendering and rollback selection against recorded `pulumi stack history --json` output."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import ConfigError, NothingToRollBackError, UnknownVersionError
from pipelines.history import clip, render_history, to_rows
from pipelines.release import TrainSpec, describe_release
from pipelines.rollback import select_rollback_target
from pipelines.targets.base import Update, update_from_json, update_to_json
from pipelines.targets.pulumi_target import PulumiStack
from tests.pipelines.fakes import StubAutoStack, fixture, updates_from_fixture


@pytest.fixture
def dev_history() -> list[Update]:
    """Recorded dev history: #7 ok, #6 failed, #5 refresh, #4 ok, #3 ok but its load check failed, #2, #1."""
    return PulumiStack(StubAutoStack("dev", fixture("history_dev.json"), fixture("tags_dev.json"))).history()


def test_adapter_reads_updatesummaries_with_verdicts_from_tags(dev_history: list[Update]) -> None:
    assert [u.number for u in dev_history] == [7, 6, 5, 4, 3, 2, 1]
    newest = dev_history[0]
    assert newest.model_version == "house-price-0d4c1e9a7b22"
    assert newest.image_ref == (
        "ghcr.io/acme/modelship@sha256:d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2"
    )
    assert newest.annotations == {"smoke": "pass", "loadcheck": "pass"}
    assert newest.config["modelship:dbPassword"] == "[secret]"  # never printed, never re-applied
    assert newest.start_time.tzinfo is not None
    assert dev_history[4].verified_bad and not dev_history[3].verified_bad
    assert dev_history == updates_from_fixture("history_dev.json", "tags_dev.json")


def test_history_table_shows_what_on_call_needs(dev_history: list[Update]) -> None:
    table = render_history(to_rows(dev_history))
    lines = table.splitlines()
    assert lines[0].split() == [
        "#",
        "time",
        "(UTC)",
        "kind",
        "result",
        "model",
        "version",
        "digest",
        "smoke",
        "loadcheck",
        "canary",
        "message",
    ]
    row7 = next(line for line in lines if line.lstrip().startswith("*7"))
    for text in (
        "2026-11-20 16:02:11",
        "succeeded",
        "house-price-0d4c1e9a7b22",
        "sha256:d1e2f3a4b5c6",
        "pass",
        "release to dev (git 9c1d2e3f4a5b)",
    ):
        assert text in row7
    row6 = next(line for line in lines if line.lstrip().startswith("6 "))
    assert "failed" in row6 and "-" in row6
    row3 = next(line for line in lines if line.lstrip().startswith("3 "))
    assert "fail" in row3.split()
    assert "refresh" in next(line for line in lines if line.lstrip().startswith("5 "))
    assert sum(line.lstrip().startswith("*") for line in lines[2:-1]) == 1
    assert "[secret]" not in table


def test_empty_history_renders_and_cannot_roll_back() -> None:
    assert render_history([]) == "(no updates)"
    with pytest.raises(NothingToRollBackError, match="no updates"):
        select_rollback_target([])


def test_default_after_a_failed_update_is_the_last_good_one(dev_history: list[Update]) -> None:
    # Current is #7 (succeeded). The previous distinct, successful, verified deployment is #4:
    # #6 failed, #5 is a refresh.
    assert select_rollback_target(dev_history).number == 4


def test_steps_skip_updates_whose_checks_failed(dev_history: list[Update]) -> None:
    assert select_rollback_target(dev_history, steps=2).number == 2  # #3's load check failed
    assert select_rollback_target(dev_history, steps=3).number == 1
    with pytest.raises(NothingToRollBackError, match="3 earlier good deployment"):
        select_rollback_target(dev_history, steps=4)


def test_to_version(dev_history: list[Update]) -> None:
    assert select_rollback_target(dev_history, to_version="house-price-1a2b3c4d5e6f").number == 1
    with pytest.raises(NothingToRollBackError, match="already deployed"):
        select_rollback_target(dev_history, to_version="house-price-0d4c1e9a7b22")
    with pytest.raises(NothingToRollBackError, match="Versions available: house-price-1a2b"):
        select_rollback_target(dev_history, to_version="house-price-bad0bad0bad0")  # it ran, and failed
    with pytest.raises(UnknownVersionError, match="Versions available: house-price-1a2b"):  # a typo: exit 2
        select_rollback_target(dev_history, to_version="house-price-nevernever00")


def test_when_the_newest_update_failed_the_last_good_one_is_restored(dev_history: list[Update]) -> None:
    without_7 = dev_history[1:]  # newest is now #6, failed
    assert select_rollback_target(without_7).number == 4


def test_single_update_has_nothing_to_roll_back_to() -> None:
    history = updates_from_fixture("history_single.json")
    with pytest.raises(NothingToRollBackError, match="0 earlier good deployment"):
        select_rollback_target(history)


def test_a_rollback_is_itself_an_update_and_the_same_config_is_skipped(dev_history: list[Update]) -> None:
    # After rolling #7 back to #4's config, the history gains #8 = #4's config. Rolling back again
    # returns to #7 (#4 deploys what is live now, so it would change nothing).
    rolled = update_from_json({**update_to_json(dev_history[3]), "version": 8}, {"smoke": "pass"})
    assert select_rollback_target([rolled, *dev_history]).number == 7


def test_local_history_json_round_trips(dev_history: list[Update]) -> None:
    for update in dev_history:
        again = update_from_json(update_to_json(update), update.annotations)
        assert again == update


def test_an_unknown_version_is_bad_input_and_a_long_message_keeps_its_words() -> None:
    assert issubclass(UnknownVersionError, ConfigError) and issubclass(UnknownVersionError, NothingToRollBackError)
    message = "rollback of dev to house-price-1a2b3c4d5e6f after a failed smoke test (git 0123456789ab)"
    assert clip(message, 30) == "rollback of dev to house-price-1a2b3c4d5e6f …"
    assert clip(message, 200) == message


def test_two_releases_with_other_parameters_read_differently(tmp_path: Path) -> None:
    a = describe_release("dev", None, TrainSpec("house-price", tmp_path, 42, {"alpha": 0.5}))
    b = describe_release("dev", None, TrainSpec("house-price", tmp_path, 42, {"alpha": 1.0}))
    c = describe_release("dev", None, TrainSpec("house-price", tmp_path, 7, None))
    assert a == "release house-price (alpha=0.5, seed 42) to dev"
    assert len({a, b, c}) == 3 and "defaults, seed 7" in c
    assert describe_release("dev", tmp_path / "iris-0123", TrainSpec("iris", tmp_path)) == "release iris-0123 to dev"
