"""An exception from the user's own code (their handler, its factory, their module as it is
imported, their source) reaches them with its traceback, their frames in it: as data in the
JSON line, as a traceback on the console, in the dead letter's headers; never a secret."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumer.dead_letter import STACKTRACE_CHARS, stacktrace
from harness import ServiceProcess
from tests import handlers, sources
from tests.clients import console_read_letters, kcat
from tests.conftest import REPO, Services, eventhubs_env, shared_access_key
from tests.offline import one_line, run

RETRIES = {"CONSUMER_RETRY_ATTEMPTS": "2", "CONSUMER_RETRY_BACKOFF_MS": "100"}


def _line_of(function: Callable[..., object], text: str) -> int:
    """The line of *function*'s source that holds *text*."""
    lines, first = inspect.getsourcelines(function)
    (found,) = [first + n for n, line in enumerate(lines) if text in line]
    return found


#: Where tests.handlers:buggy's bug is.
BUG = ("tests/handlers.py", "_amount", _line_of(handlers._amount, 'fields["amount"]'))


def _frames(line: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(file relative to the repository, function, line) of each frame of *line*'s exception."""
    (exception,) = line["exception"]
    return [
        (
            str(Path(f["filename"]).relative_to(REPO))
            if f["filename"].startswith(str(REPO))
            else f["filename"],
            f["name"],
            f["lineno"],
        )
        for f in exception["frames"]
    ]


def _buggy_consumer(
    services: Services, new_topic: Callable[..., str], **settings: str
) -> ServiceProcess:
    """A consumer of one record (from kcat), handled by tests.handlers:buggy."""
    topic = new_topic(partitions=1)
    kcat(services.kafka.bootstrap_servers, "-P", "-t", topic, stdin=b"an order\n")
    return services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=f"g-{topic}",
        CONSUMER_HANDLER="tests.handlers:buggy",
        **RETRIES,
        **settings,
    )


def test_a_handlers_bug_carries_its_traceback_in_every_line_and_the_dead_letter(
    services: Services, new_topic: Callable[..., str]
) -> None:
    dead = new_topic(partitions=1)
    consumer = _buggy_consumer(services, new_topic, CONSUMER_DEAD_LETTER_TOPIC=dead)
    services.wait_until(lambda: consumer.events("record.dead_lettered"), what="a dead letter")
    assert consumer.stop() == 0

    (retrying,) = consumer.events("handler.retrying")
    (dead_lettered,) = consumer.events("record.dead_lettered")
    for line in (retrying, dead_lettered):
        assert line["error"] == "KeyError: 'amount'"
        assert line["exception"][0]["exc_type"] == "KeyError"
        assert _frames(line)[-2:] == [
            ("tests/handlers.py", "buggy", _line_of(handlers.buggy, "_amount(record)")),
            BUG,
        ]
    (letter,) = console_read_letters(services.kafka.bootstrap_servers, dead, 1)
    stacktrace = letter["dlt.exception.stacktrace"]
    assert letter["value"] == "an order"
    assert stacktrace.startswith("Traceback (most recent call last):\n")
    assert f'handlers.py", line {BUG[2]}, in _amount\n' in stacktrace
    assert stacktrace.endswith("KeyError: 'amount'\n")
    print(f"dead letter's stack trace:\n{stacktrace}")


def test_without_a_dead_letter_topic_the_last_line_has_it(
    services: Services, new_topic: Callable[..., str]
) -> None:
    consumer = _buggy_consumer(services, new_topic)
    assert consumer.process.wait(60) == 1
    (failed,) = consumer.events("handler.failed")
    assert _frames(failed)[-1] == BUG


def test_on_the_console_it_is_a_traceback(
    services: Services, new_topic: Callable[..., str]
) -> None:
    consumer = _buggy_consumer(services, new_topic, LOG_FORMAT="console")
    assert consumer.process.wait(60) == 1
    output = consumer.output()
    assert "handler.failed" in output
    assert "Traceback (most recent call last):" in output
    assert f'handlers.py", line {BUG[2]}, in _amount' in output


@pytest.mark.faults
def test_a_secret_in_the_users_exception_is_in_no_line_and_no_dead_letter(
    services: Services, new_topic: Callable[..., str]
) -> None:
    kafka = services.kafka
    topic, dead = new_topic(partitions=1), new_topic(partitions=1)
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, stdin=b"an order\n")
    env = eventhubs_env(kafka, topic, f"g-{topic}")
    key = shared_access_key(env["EVENTHUBS_CONNECTION_STRING"])
    consumer = services.start(
        "consumer",
        clean_env=True,
        **env,
        CONSUMER_HANDLER="tests.handlers:leaks_secret",
        CONSUMER_DEAD_LETTER_TOPIC=dead,
        **RETRIES,
    )
    services.wait_until(lambda: consumer.events("record.dead_lettered"), what="a dead letter")
    assert consumer.stop() == 0

    (dead_lettered,) = consumer.events("record.dead_lettered")
    assert dead_lettered["exception"][0]["exc_value"] == "cannot use [REDACTED]"
    (letter,) = console_read_letters(kafka.bootstrap_servers, dead, 1)
    assert key not in str(letter)
    assert letter["dlt.exception.message"] == "cannot use [REDACTED]"
    assert "[REDACTED]" in letter["dlt.exception.stacktrace"]
    assert key not in consumer.output()


def test_a_module_that_fails_as_it_is_imported_shows_where(tmp_path: Path) -> None:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "deep.py").write_text(
        'SETTINGS: dict[str, str] = {}\n\n\ndef lookup() -> str:\n    return SETTINGS["x"]\n\n\n'
        "TABLE = lookup()\n"
    )
    result = run("consumer", PYTHONPATH=str(tmp_path), CONSUMER_HANDLER="myapp.deep:handle")

    assert result.returncode == 2
    problem, *shown = result.stderr.splitlines()[1:]
    assert (
        problem
        == "  CONSUMER_HANDLER=myapp.deep:handle: importing myapp.deep failed: KeyError: 'x'"
    )
    assert shown[0] == "Traceback (most recent call last):"
    # Their frames only, from their module on: nothing of ours or importlib's.
    assert shown[1] == f'  File "{package / "deep.py"}", line 8, in <module>'
    assert f'  File "{package / "deep.py"}", line 5, in lookup' in shown
    assert shown[-1] == "KeyError: 'x'"
    assert result.stdout == ""
    print(result.stderr)


def test_a_factory_that_fails_to_open_shows_where() -> None:
    result = run("consumer", CONSUMER_HANDLER="tests.handlers:fails_to_open")

    assert result.returncode == 1
    failed = one_line(result, "service.failed")
    assert failed["reason"] == "handler_unavailable"
    assert _frames(failed)[-2:] == [
        ("tests/handlers.py", "fails_to_open", _line_of(handlers.fails_to_open, "_open_pool()")),
        ("tests/handlers.py", "_open_pool", _line_of(handlers._open_pool, "raise")),
    ]


def test_a_source_that_fails_shows_where(services: Services, new_topic: Callable[..., str]) -> None:
    producer = services.start(
        "producer",
        KAFKA_TOPIC=new_topic(partitions=1),
        PRODUCER_SOURCE="tests.sources:fails_midway",
        PRODUCER_RATE="0",
    )
    assert producer.process.wait(60) == 1
    (failed,) = producer.events("service.failed")
    assert failed["reason"] == "source_failed"
    assert _frames(failed)[-1] == (
        "tests/sources.py",
        "fails_midway",
        _line_of(sources.fails_midway, "raise RuntimeError"),
    )


def _ping(depth: int) -> None:
    if not depth:
        raise ValueError("deep down")
    _pong(depth - 1)


def _pong(depth: int) -> None:
    # Two functions by turns: Python folds a frame that repeats the one before it.
    _ping(depth)


def test_a_long_traceback_keeps_its_end_in_the_dead_letter() -> None:
    try:
        _ping(100)
    except ValueError as exc:
        text, whole = stacktrace(exc), "".join(traceback.format_exception(exc))
    assert len(whole) > STACKTRACE_CHARS
    assert len(text) <= STACKTRACE_CHARS + len("...\n")
    kept = text.removeprefix("...\n")
    assert whole.endswith("\n" + kept)  # its end, from the start of a line
    assert text.endswith('in _ping\n    raise ValueError("deep down")\nValueError: deep down\n')
