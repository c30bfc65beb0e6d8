"""The tables of docs/settings.md are what service/settings.py and Pulumi.yaml render; no other doc copies them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.devtools import settings_docs
from service.settings import Settings


@pytest.mark.parametrize("doc", settings_docs.DOCS, ids=lambda p: p.name)
def test_the_committed_table_is_the_rendered_one(doc: Path) -> None:
    text = doc.read_text()
    assert settings_docs.render(text) == text, "run `make docs` and commit the result"


@pytest.mark.parametrize("doc", settings_docs.DOCS, ids=lambda p: p.name)
def test_every_setting_has_a_row(doc: Path) -> None:
    text = doc.read_text()
    for name, field in Settings.model_fields.items():
        assert f"| `{settings_docs.env_name(name, field)}` |" in text, name


def test_a_missing_row_is_noticed() -> None:
    text = f"intro\n{settings_docs.BEGIN}\n{settings_docs.table()}\n{settings_docs.END}\nrest"
    stale = "\n".join(line for line in text.splitlines() if "MODELSHIP_LOG_LEVEL" not in line)
    assert settings_docs.render(stale) != stale
    assert settings_docs.render(stale) == text.rstrip("\n")
    assert settings_docs.env_name("database_url", Settings.model_fields["database_url"]) == "DATABASE_URL"


def test_the_config_table_is_rendered_from_pulumi_yaml() -> None:
    page = (settings_docs.ROOT / "docs" / "settings.md").read_text()
    assert f"{settings_docs.CONFIG_BEGIN}\n{settings_docs.config_table()}\n{settings_docs.CONFIG_END}" in page
    stale = "\n".join(line for line in page.splitlines() if not line.startswith("| `service.maxBatch` |"))
    assert settings_docs.render(stale) != stale


def test_the_tables_are_generated_once() -> None:
    """docs/settings.md is the one rendered copy: README and the other pages link to it."""
    assert settings_docs.DOCS == (settings_docs.ROOT / "docs" / "settings.md",)
    others = [settings_docs.ROOT / "README.md", *sorted((settings_docs.ROOT / "docs").glob("*.md"))]
    for doc in others:
        if doc not in settings_docs.DOCS:
            text = doc.read_text()
            assert settings_docs.BEGIN not in text and settings_docs.CONFIG_BEGIN not in text, doc.name
