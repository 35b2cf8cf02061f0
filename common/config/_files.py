"""Secrets from files: ``NAME_FILE`` names a file that holds what ``NAME`` would.

Docker secrets and Kubernetes Secrets mounted as volumes are files, and a
file, unlike a variable, is not shown by ``docker inspect``, in
``/proc/<pid>/environ`` or in a pod's spec. The suffix is the official
images' convention (``POSTGRES_PASSWORD_FILE``). pydantic-settings'
``secrets_dir`` reads files named after the fields from one directory; a
variable per secret lets each be mounted wherever its platform puts it.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from common.config._env import env_names
from common.config._errors import ConfigError

SUFFIX = "_FILE"


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """*name*'s value, from the variable itself or from the file ``NAME_FILE`` names.

    None when neither is set. The file's trailing newlines (what ``echo`` and
    most editors leave) are not part of the value. Raises ConfigError, naming
    the variable and never the file's content, for a file that is missing,
    unreadable or empty, and for a value given both ways.
    """
    environ = os.environ if environ is None else environ
    given = environ.get(name, "").strip()
    path = environ.get(name + SUFFIX, "").strip()
    if not path:
        return given or None
    if given:
        raise ConfigError([f"{name} and {name}{SUFFIX} are both set: give the value one way"])
    return _read(name + SUFFIX, Path(path))


def _read(variable: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = f"{variable}: there is no file {path}"
    except IsADirectoryError:
        problem = f"{variable}: {path} is a directory, not a file"
    except PermissionError:
        problem = f"{variable}: {path} cannot be read (permission denied for uid {os.getuid()})"
    except UnicodeDecodeError:
        problem = f"{variable}: {path} is not UTF-8 text"
    except OSError as exc:
        problem = f"{variable}: {path} cannot be read ({exc.strerror})"
    else:
        value = text.rstrip("\r\n")
        if value.strip():
            return value
        problem = f"{variable}: {path} is empty"
    raise ConfigError([problem])


def is_secret(field: FieldInfo) -> bool:
    """Whether *field* holds a secret, and so may come from a file too."""
    return field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)


def file_variables(model: type[BaseSettings]) -> list[str]:
    """Every ``NAME_FILE`` variable *model* reads, for docs and their check."""
    return [
        name + SUFFIX
        for field, names in env_names(model).items()
        if is_secret(model.model_fields[field])
        for name in names
    ]


class SecretFiles(PydanticBaseSettingsSource):
    """The secret fields' values given as files; the variables themselves are the env source's."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Required by the base class; __call__ reads every field at once.
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field, names in env_names(self.settings_cls).items():
            if not is_secret(self.settings_cls.model_fields[field]):
                continue
            for name in names:
                if not os.environ.get(name + SUFFIX, "").strip():
                    continue
                try:
                    values[name] = secret(name)
                except ConfigError as exc:
                    problems += exc.problems
        if problems:
            raise ConfigError(problems)
        return values
