"""Log events are a contract: each is defined once in common/events.py, the code logs
only those, at their level and with their fields, and docs/metrics-and-logs.md's
table is the same list."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import events
from tests.conftest import REPO

SOURCES = sorted(
    p for pkg in ("common", "producer", "consumer") for p in (REPO / pkg).rglob("*.py")
)
LEVELS = {"debug", "info", "warning", "error"}


def _log_calls(path: Path) -> Iterator[ast.Call]:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and "log" in ast.unparse(node.func.value).lower()
            and node.args
        ):
            yield node


def _calls() -> list[tuple[str, ast.Call]]:
    return [(f"{p.relative_to(REPO)}:{c.lineno}", c) for p in SOURCES for c in _log_calls(p)]


def test_the_code_logs_only_events_of_the_catalogue_at_their_level_with_their_fields() -> None:
    calls = _calls()
    assert len(calls) >= 25  # the scan found them
    wrong = []
    for where, call in calls:
        name = ast.unparse(call.args[0])
        if not name.startswith("events."):
            wrong.append(f"{where}: logs {name}, not an events.NAME")
            continue
        event = events.CATALOGUE[getattr(events, name.removeprefix("events."))]
        assert isinstance(call.func, ast.Attribute)
        if call.func.attr != event.level:
            wrong.append(f"{where}: {event.name} at {call.func.attr}, not {event.level}")
        # exc_info is rendered as the line's ``exception``: its traceback.
        fields = {
            "exception" if k.arg == "exc_info" else k.arg
            for k in call.keywords
            if k.arg is not None
        }
        if extra := fields - set(event.fields):
            wrong.append(f"{where}: {event.name} with undeclared fields {sorted(extra)}")
    assert wrong == []


def test_every_event_of_the_catalogue_is_logged_somewhere() -> None:
    logged = {ast.unparse(call.args[0]).removeprefix("events.") for _, call in _calls()}
    names = {getattr(events, n) for n in logged if hasattr(events, n)}
    assert sorted(set(events.CATALOGUE) - names) == []


def test_event_names_are_noun_dot_verb() -> None:
    assert [n for n in events.CATALOGUE if not re.fullmatch(r"[a-z]+\.[a-z_]+", n)] == []


def _documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    text = (REPO / "docs/metrics-and-logs.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| (\w+) \| ([^|]*) \|", text, flags=re.M)
    return {
        name: (level, tuple(re.findall(r"`([a-z_]+)`", fields))) for name, level, fields in rows
    }


def test_the_docs_table_lists_every_event_with_its_level_and_fields() -> None:
    catalogue = {e.name: (e.level, e.fields) for e in events.CATALOGUE.values()}
    assert _documented() == catalogue


@pytest.mark.parametrize("event", list(events.CATALOGUE.values()), ids=lambda e: e.name)
def test_every_event_says_what_it_means(event: events.Event) -> None:
    assert event.says
    assert event.fields
