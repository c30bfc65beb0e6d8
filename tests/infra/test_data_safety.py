"""Data safety (issue 10): prod's Namespace and Postgres Cluster are Pulumi-protected; nothing else is, and
dev, staging and PR stacks stay disposable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra import harness, render
from infra.components.database import Database, DatabaseArgs
from infra.config import load
from infra.harness import ProgramRun
from tests.infra.support import SECRETS, run_stack

PROTECTED_KINDS = {"Namespace", "Cluster"}


def protected(run: ProgramRun) -> set[str]:
    return {r.kind for r in run.resources if r.protect}


def test_prod_protects_its_namespace_and_cluster_and_nothing_else() -> None:
    assert protected(run_stack("prod")) == PROTECTED_KINDS


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_other_stacks_can_be_torn_down(stack: str) -> None:
    assert protected(run_stack(stack)) == set()


def test_a_pr_stack_built_from_prod_settings_can_switch_protection_off() -> None:
    assert protected(run_stack("prod", {"protect": False})) == set()


def test_protection_follows_the_cluster_into_an_existing_namespace() -> None:
    # No Namespace of ours to protect, but the Cluster (and its volumes) still is.
    assert protected(run_stack("prod", {"namespace": "team-ml"})) == {"Cluster"}


def test_an_external_database_leaves_only_the_namespace_to_protect() -> None:
    assert protected(run_stack("prod", {"db.mode": "external"})) == {"Namespace"}


def test_prod_renders_with_protection_marked(tmp_path: Path) -> None:
    paths = render.write_manifests(run_stack("prod"), tmp_path)
    marked = {yaml.safe_load(p.read_text())["kind"] for p in paths if p.read_text().startswith(render.PROTECTED_HEADER)}
    assert marked == PROTECTED_KINDS
    dev = render.write_manifests(run_stack("dev"), tmp_path / "dev")
    assert not [p for p in dev if "protect=true" in p.read_text()]


# The component on its own, its option seen by the mock monitor inside the Pulumi runtime.
@pytest.fixture
def prod_mocks() -> tuple[harness.Recorder, Any]:
    config, secret_keys = harness.load_stack_config("prod", secrets=SECRETS)
    recorder = harness.use_mocks("prod", config, secret_keys)
    return recorder, load(pulumi.Config(), "prod")


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_database_component_protects_its_cluster_only_when_asked(prod_mocks: tuple[harness.Recorder, Any]) -> Any:
    recorder, cfg = prod_mocks
    guarded = Database("guarded-db", DatabaseArgs(namespace="ns", settings=cfg.database, protect=True))
    plain = Database("plain-db", DatabaseArgs(namespace="ns", settings=cfg.database))

    def check(_: Any) -> None:
        flags = {r.name: r.protect for r in recorder.captured() if r.kind == "Cluster"}
        assert flags == {"guarded-db-cluster": True, "plain-db-cluster": False}

    return pulumi.Output.all(guarded.cluster.urn, plain.cluster.urn).apply(check)


def test_pipelines_read_the_key_infra_declares() -> None:
    """`pipelines destroy` checks the very key the program reads: declared, read by infra, on in prod."""
    from pipelines.targets.base import PROJECT, PROTECT_KEY

    declared = yaml.safe_load((harness.REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    key = PROTECT_KEY.removeprefix(f"{PROJECT}:")
    assert declared[key]["type"] == "boolean" and declared[key]["default"] is False
    assert f'require_bool("{key}")' in (harness.REPO_ROOT / "infra" / "config.py").read_text()
    prod = yaml.safe_load((harness.REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    assert prod[PROTECT_KEY] is True
