"""`python -m producer --help` and `python -m consumer --help` tell the truth: each default
as a user types it, and typed back into its variable it is the code's default; the Event
Hubs commit interval it states is the one used; the replay subcommand is named. A port
in use says how to pick another."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from common.config import ConsumerSettings, ProducerSettings, env_names, load, resolve
from tests.conftest import REPO
from tests.offline import one_line, run

MODELS = {"producer": ProducerSettings, "consumer": ConsumerSettings}


def _help(module: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        env={"PATH": os.environ["PATH"], "COLUMNS": "1000"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def _defaults(text: str) -> dict[str, str]:
    """Each variable's default as --help shows it."""
    shown = {}
    for line in text.splitlines():
        found = re.search(r"\(default: ([^)]*)\) \[([A-Z_]+)", line)
        if found:
            shown[found.group(2)] = found.group(1)
    return shown


@pytest.mark.parametrize("module", MODELS)
def test_each_default_shown_is_what_the_code_takes_when_typed_back(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = MODELS[module]
    shown = _defaults(_help(module))
    assert len(shown) >= 10  # the scan found them
    assert not [v for v in shown.values() if v == "" or v.startswith(("(", "["))]
    for name in {n for names in env_names(model).values() for n in names}:
        monkeypatch.delenv(name, raising=False)
    code_defaults = load(model, {"topic": "t", "bootstrap_servers": "127.0.0.1:1"})
    field_of = {names[0]: field for field, names in env_names(model).items()}
    for variable, value in shown.items():
        monkeypatch.setenv(variable, value)
        typed_back = load(model, {"topic": "t", "bootstrap_servers": "127.0.0.1:1"})
        monkeypatch.delenv(variable)
        field = field_of[variable]
        assert getattr(typed_back, field) == getattr(code_defaults, field), variable


def test_the_event_hubs_commit_interval_stated_is_the_one_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = " ".join(_help("consumer").split())
    stated = re.search(r"Event Hubs: \d+ or more \([^)]*\), (\d+) by default", text)
    assert stated, "the help states the Event Hubs commit interval"
    for name in {n for names in env_names(ConsumerSettings).values() for n in names}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "EVENTHUBS_CONNECTION_STRING",
        "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5",
    )
    monkeypatch.setenv("EVENTHUBS_TOPIC", "hub")
    monkeypatch.setenv("EVENTHUBS_CONSUMER_GROUPID", "g")
    plan = resolve(load(ConsumerSettings))
    assert plan.commit_interval_ms == int(stated.group(1))


def test_the_consumers_help_names_the_replay_subcommand() -> None:
    text = " ".join(_help("consumer").split())
    assert "`python -m consumer replay --help`" in text
    replay = subprocess.run(
        [sys.executable, "-m", "consumer", "replay", "--help"],
        env={"PATH": os.environ["PATH"]},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert replay.stdout.startswith("usage: python -m consumer replay")


@pytest.mark.parametrize("module", MODELS)
def test_a_metrics_port_in_use_says_how_to_pick_another(module: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(module, METRICS_HOST="127.0.0.1", METRICS_PORT=str(port))
    assert result.returncode == 1
    failed = one_line(result, "service.failed")
    assert failed["reason"] == "metrics_port_unavailable"
    assert failed["error"] == (
        "Address already in use: set METRICS_PORT to a free port (METRICS_PORT=0 picks one)"
    )
