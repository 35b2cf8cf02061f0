"""The command line: ``--help`` lists every setting, and flags override the environment."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pydantic_settings import BaseSettings

from common.config._env import env_names


def argument_parser(
    model: type[BaseSettings], prog: str, description: str
) -> argparse.ArgumentParser:
    """A --help that lists every setting, its variables and default; flags override."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Every option can also be set by the environment variables named in brackets.",
    )
    for field_name, names in env_names(model).items():
        field = model.model_fields[field_name]
        default = typed(field.get_default())
        shown = "" if default is None else f" (default: {default})"
        parser.add_argument(
            "--" + field_name.replace("_", "-"),
            dest=field_name,
            metavar=names[0],
            help=f"{field.description}{shown} [{', '.join(names)}]",
        )
    return parser


def typed(default: object) -> str | None:
    """*default* as a user types it in the variable (``sticky,range``, ``true``); None when
    there is none to show (unset, or empty)."""
    if default is None or default == "":
        return None
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple | list):
        return ",".join(str(part) for part in default)
    return str(default)


def parse_overrides(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict[str, str]:
    """The flags given on the command line, by field name."""
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
