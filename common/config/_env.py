"""Which environment variables feed which settings field, and how to name them to a user."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings


def env(*names: str, description: str, **kwargs: Any) -> Any:
    """A settings field read from the environment variables *names*, first one first.

    The first name is the one we document; the others are the Go/Sarama
    walkthrough's, which keep working.
    """
    return Field(
        validation_alias=AliasChoices(*names),
        description=description,
        json_schema_extra={"env": list(names)},
        **kwargs,
    )


def env_names(model: type[BaseSettings]) -> dict[str, list[str]]:
    """``{field: [variables]}`` for every field of *model* read from the environment."""
    names = {}
    for field_name, field in model.model_fields.items():
        extra = field.json_schema_extra
        env_list = extra.get("env") if isinstance(extra, dict) else None
        if isinstance(env_list, list):
            names[field_name] = [str(n) for n in env_list]
    return names


def env_variables(model: type[BaseSettings]) -> list[str]:
    """Every environment variable *model* reads, for docs and the README check."""
    return [name for names in env_names(model).values() for name in names]


def label(model: type[BaseSettings], field: str) -> str:
    """How an error names *field*: ``KAFKA_TOPIC (or EVENTHUBS_TOPIC)``."""
    names = env_names(model).get(field, [field])
    return names[0] + "".join(f" (or {name}" for name in names[1:]) + ")" * (len(names) - 1)
