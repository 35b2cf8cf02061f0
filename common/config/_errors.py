"""Settings problems in the user's words: one line per variable, never its value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from traceback import format_exception
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from common.config._env import env_names, label

Settings = TypeVar("Settings", bound=BaseSettings)


class ConfigError(Exception):
    """Settings that cannot work; ``problems`` has one line per bad or missing variable.

    ``errors`` are the user's own exceptions behind some of them (a handler's
    module that raised as it was imported), whose tracebacks show where.
    """

    def __init__(self, problems: Sequence[str], errors: Sequence[BaseException] = ()) -> None:
        self.problems = list(problems)
        self.errors = list(errors)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in self.problems))

    def report(self) -> str:
        """What a user reads: the problems, then each of their exceptions' tracebacks."""
        return "".join([f"{self}\n", *("".join(format_exception(e)) for e in self.errors)])


def _describe(model: type[BaseSettings], error: Mapping[str, Any]) -> list[str]:
    loc = error.get("loc") or ()
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    if not loc:
        return message.splitlines()
    by_primary = {names[0]: field for field, names in env_names(model).items()}
    name = label(model, by_primary.get(str(loc[0]), str(loc[0])))
    if error.get("type") == "missing":
        return [f"{name} is missing"]
    if error.get("type") == "string_too_short" and (error.get("ctx") or {}).get("min_length") == 1:
        return [f"{name} is blank"]
    return [f"{name}: {message}"]


def load(model: type[Settings], overrides: Mapping[str, object] | None = None) -> Settings:
    """Read *model* from the environment; *overrides* (command-line flags) win.

    Raises ConfigError naming every bad variable and never quoting a value.
    """
    names = env_names(model)
    init: dict[str, Any] = {names[field][0]: v for field, v in (overrides or {}).items()}
    try:
        return model(**init)
    except ValidationError as exc:
        problems = [
            line for error in exc.errors(include_input=False) for line in _describe(model, error)
        ]
        raise ConfigError(problems) from None
