"""CONSUMER_HANDLER names a function, a factory of one, or a context manager that opens
resources once at start and closes them at stop, whatever ends the consumer."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog

from consumer.handler import HandlerInvalid, Record, log_records, opened
from tests.conftest import REPO

RECORD = Record("t", 0, 0, -1, None, b"v", ())


def handle(record: Record) -> None:
    pass


def test_a_function_of_one_record_is_the_handler() -> None:
    with opened(handle, 1, "g") as handler:
        assert handler is handle


def test_no_handler_named_logs_each_record() -> None:
    with opened(None, 1, "g") as handler, structlog.testing.capture_logs() as lines:
        handler(RECORD)
        handler(RECORD._replace(offset=1))
    assert [(line["event"], line["offset"]) for line in lines] == [
        ("message.received", 0),
        ("message.received", 1),
    ]


def test_a_factory_is_called_once_at_start() -> None:
    made: list[int] = []

    def factory() -> object:
        made.append(1)
        return handle

    with opened(factory, 1, "g") as handler:
        handler(RECORD)
        handler(RECORD)
    assert made == [1]


def test_a_context_manager_is_open_while_the_consumer_runs_and_closed_on_a_failure() -> None:
    states: list[str] = []

    @contextlib.contextmanager
    def pool() -> Iterator[object]:
        states.append("opened")
        try:
            yield handle
        finally:
            states.append("closed")

    def consumer_fails() -> None:
        with opened(pool, 1, "g"):
            assert states == ["opened"]
            raise RuntimeError("the consumer failed")

    with pytest.raises(RuntimeError):
        consumer_fails()
    assert states == ["opened", "closed"]


def test_a_factory_that_gives_no_handler_is_refused() -> None:
    refused = opened(lambda: 42, 1, "g")
    with pytest.raises(HandlerInvalid, match="not a callable that takes one record"):
        refused.__enter__()


def test_a_factory_that_gives_no_handler_stops_the_consumer_with_exit_2() -> None:
    """Called wrong like a misspelt name: one line, exit 2, before anything connects."""
    result = subprocess.run(
        [sys.executable, "-m", "consumer"],
        env={
            "PATH": os.environ["PATH"],
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "KAFKA_TOPIC": "t",
            "KAFKA_GROUP_ID": "g",
            "METRICS_PORT": "0",
            "CONSUMER_HANDLER": "tests.handlers:gives_no_handler",
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    failed = [line for line in lines if line["event"] == "service.failed"]
    assert len(failed) == 1
    assert failed[0]["reason"] == "handler_invalid"
    assert "factory gave int" in failed[0]["error"]
    assert not any(line["event"].startswith("kafka.") for line in lines)


@pytest.mark.parametrize(("every", "logged"), [(1, [0, 1, 2, 3, 4, 5, 6]), (3, [0, 3, 6]), (0, [])])
def test_the_default_handler_logs_one_record_in_log_message_every(
    every: int, logged: list[int]
) -> None:
    handler = log_records(every, "g")
    with structlog.testing.capture_logs() as lines:
        for offset in range(7):
            handler(RECORD._replace(offset=offset))
    assert [line["offset"] for line in lines] == logged
    assert all(line["event"] == "message.received" for line in lines)
