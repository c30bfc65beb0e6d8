"""The service settings a stack may set ("one contract, one place").

Each field of service/settings.py marked STACK is read as `service.<camelCaseName>`, checked by the service's
own Settings model and rendered into the ConfigMap, so its type, default and checks stay in that one
declaration and Pulumi.yaml does not repeat them (the engine accepts an undeclared key, ENGINES.md).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pydantic import AliasChoices, ValidationError
from pydantic.fields import FieldInfo

from infra.config import read
from service.settings import Settings


class _StackSettings(Settings):
    """The service's Settings fed only what it is given: the deploying machine's environment must not leak in."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: type[Settings], init_settings: Any, env_settings: Any, dotenv_settings: Any,
        file_secret_settings: Any,
    ) -> tuple[Any, ...]:  # fmt: skip
        return (init_settings,)


def stack_settings() -> dict[str, str]:
    """{field name: config key} of the Settings fields marked STACK, e.g. max_batch -> service.maxBatch."""
    return {name: _stack_key(name) for name, field in Settings.model_fields.items() if _is_stack(field)}


def env_var(name: str) -> str:
    """The environment variable the service reads field NAME from first, e.g. model_dir -> MODELSHIP_MODEL_DIR,
    database_url -> DATABASE_URL (its alias)."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def default(name: str) -> str:
    """Field NAME's default as its environment variable's text, e.g. model_dir -> /app/model."""
    text = _text(Settings.model_fields[name].default)
    if text is None:
        raise KeyError(f"service setting {name} has no default")
    return text


def read_settings(c: pulumi.Config) -> tuple[Settings, dict[str, str]]:
    """The stack's STACK settings checked by the service's own model, and the text of each (default if unset)."""
    keys = stack_settings()
    given = {name: value for name, key in keys.items() if (value := read.raw(c, key)) is not None}
    try:
        settings = _StackSettings.model_validate(given)
    except ValidationError as error:
        raise read.invalid(
            [f"{keys[str(e['loc'][0])]}: {e['msg']}, got {e['input']!r}" for e in error.errors()]
        ) from None
    defaults = {name: _text(getattr(settings, name)) for name in keys if name not in given}
    return settings, {name: text for name, text in {**given, **defaults}.items() if text is not None}


def _is_stack(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("stack") is True


def _stack_key(name: str) -> str:
    first, *rest = name.split("_")
    return "service." + first + "".join(part.capitalize() for part in rest)


def _text(value: object) -> str | None:
    """A default as the environment variable pydantic-settings reads back (true, 1000, reject); None: unset."""
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)
