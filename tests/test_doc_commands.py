"""Every command in the README's and the docs' shell blocks can run as written from a fresh
checkout: each `make` target exists, each of our modules takes each flag it is given,
Python is the project's `.venv/bin/python`, compose files and profiles exist, and every
other program is one the page means (Docker, kcat, helm...), not a typo."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: Programs a page may name that are not ours: a user's tools.
THEIRS = {"docker", "kcat", "helm", "kubectl", "grep", "echo", "printf", "set", ".", "export"}
SEPARATORS = {"|", "||", "&&", ";"}


def _commands(page: Path) -> list[list[str]]:
    """Each simple command of *page*'s shell blocks, as words, variable assignments dropped."""
    found = []
    for block in re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", page.read_text(), re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.lstrip().startswith(("#", "--")):
                continue  # a comment, or flags that continue the command above
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            command: list[str] = []
            redirect = False
            for token in [*lexer, ";"]:
                if token in SEPARATORS:
                    while command and re.match(r"^[A-Za-z_]\w*=", command[0]):
                        command.pop(0)
                    if command:
                        found.append(command)
                    command, redirect = [], False
                elif token in {"<", ">", ">>"}:
                    redirect = True
                elif not redirect:
                    command.append(token)
    return found


ALL = [(page, command) for page in PAGES for command in _commands(page)]


def _id(case: tuple[Path, list[str]]) -> str:
    page, command = case
    return f"{page.name}: {' '.join(command)[:60]}"


@functools.cache
def _help(*words: str) -> str | None:
    """`python -m MODULE [SUBCOMMAND] --help`, or None if it fails."""
    result = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", *words, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


@functools.cache
def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*)\s*:(?!=)", text, flags=re.M))


def _check_ours(command: list[str]) -> None:
    assert command[1] == "-m", command
    module, rest = command[2], command[3:]
    subcommand = [rest[0]] if rest and not rest[0].startswith("-") else []
    text = (_help(module, *subcommand) if subcommand else None) or _help(module)
    assert text is not None, f"python -m {module} cannot run"
    flags = [word.split("=", 1)[0] for word in rest if word.startswith("--")]
    assert [flag for flag in flags if flag not in text] == [], f"{command}: unknown flags"


def _check_compose(command: list[str]) -> None:
    files = [command[i + 1] for i, word in enumerate(command) if word == "-f"]
    assert all((REPO / name).is_file() for name in files), files
    profiles = [command[i + 1] for i, word in enumerate(command) if word == "--profile"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    known = {p for service in compose["services"].values() for p in service.get("profiles", [])}
    assert set(profiles) <= known, profiles


@pytest.mark.parametrize("case", ALL, ids=_id)
def test_each_command_can_run_as_written(case: tuple[Path, list[str]]) -> None:
    _, command = case
    program = command[0]
    if program == "make":
        assert set(command[1:]) <= _make_targets(), command
    elif program == ".venv/bin/python":
        _check_ours(command)
    elif program == "docker" and command[1:2] == ["compose"]:
        _check_compose(command)
    elif "/" in program:
        assert (REPO / program).is_file(), program
    else:
        # `python` alone is whatever the user's PATH has: the project's is .venv/bin/python.
        assert program in THEIRS, f"{program!r}: not a program the docs mean"


def test_the_scan_found_the_commands() -> None:
    programs = {command[0] for _, command in ALL}
    assert {"make", ".venv/bin/python", "docker", "kcat", "helm"} <= programs
    assert len(ALL) >= 40
