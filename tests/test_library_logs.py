"""The libraries under us speak only when it matters: kafka-python and the Azure SDK
from WARNING, a line they repeat many times a second once per interval with a count,
and azure-identity's failure in one line that names every credential it tried."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import structlog
from kafka.cluster import ClusterMetadata

from common import events
from common.entra import EntraTokens
from common.failure import ServiceFailed
from common.logging import RepeatLimiter, configure
from tests.conftest import ManualClock


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Our logging, as configured at start; each test calls configure itself, so that
    its handler writes to this test's captured stdout."""
    yield capsys
    logging.getLogger().handlers.clear()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _empty_metadata() -> None:
    """kafka-python's own line, from its own code, as a broker that lists no brokers makes it."""
    ClusterMetadata().update_metadata(SimpleNamespace(brokers=[]))


def test_a_flood_of_one_kafka_python_line_is_written_once(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    configure("consumer", "INFO", "json")
    for _ in range(1_000):
        _empty_metadata()
    (line,) = _lines(json_logs)
    assert str(line["event"]).startswith("No broker metadata found")


def test_the_held_back_lines_are_counted_when_the_line_next_shows(clock: ManualClock) -> None:
    shown: list[str] = []
    limiter = RepeatLimiter(interval_s=10.0, clock=clock)
    logger = logging.getLogger("kafka.cluster")
    handler = _Collect(shown)
    handler.addFilter(limiter)
    logger.addHandler(handler)
    try:
        with structlog_capture() as ours:
            for _ in range(500):
                _empty_metadata()
                clock.now += 0.01  # 500 in 5 s
            clock.now += 5.1
            _empty_metadata()  # an interval after the first: shown, with the count
    finally:
        logger.removeHandler(handler)
    assert len(shown) == 2
    assert ours == [(events.LIBRARY_REPEATED, 499)]


def test_another_line_of_the_same_logger_is_not_held_back(clock: ManualClock) -> None:
    limiter = RepeatLimiter(interval_s=10.0, clock=clock)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("kafka.net", logging.WARNING, "", 0, msg, (), None)

    assert limiter.filter(record("a %s"))
    assert not limiter.filter(record("a %s"))
    assert limiter.filter(record("b %s"))


def test_the_azure_sdk_shows_from_warning_unless_debug(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    configure("consumer", "INFO", "json")
    azure = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    azure.info("Request URL: 'http://127.0.0.1/token'\nRequest method: 'GET'")
    azure.warning("a warning of the SDK")
    assert [line["event"] for line in _lines(json_logs)] == ["a warning of the SDK"]
    configure("consumer", "DEBUG", "json")
    azure.info("shown at DEBUG")
    assert [line["event"] for line in _lines(json_logs)] == ["shown at DEBUG"]


def test_a_failing_credential_chain_names_every_credential_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A managed identity endpoint on loopback that refuses connections, as on a
    # node whose identity agent is down; azure-identity's real chain.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for name in list(os.environ):
        if name.startswith(("AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{port}/token")
    monkeypatch.setenv("IDENTITY_HEADER", "secret-header")
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "prod")  # no developer tools probed

    with pytest.raises(ServiceFailed) as failed:
        EntraTokens("contoso.servicebus.windows.net").start()
    detail = failed.value.detail
    assert failed.value.reason == "credential_unavailable"
    assert "EnvironmentCredential" in detail
    assert "ManagedIdentityCredential" in detail
    assert "\n" not in detail
    assert "secret-header" not in detail


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__()
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record.getMessage())


class structlog_capture:
    """Our own events logged meanwhile, as (name, repeated)."""

    def __enter__(self) -> list[tuple[str, object]]:
        self._context = structlog.testing.capture_logs()
        self._captured = self._context.__enter__()
        self.events: list[tuple[str, object]] = []
        return self.events

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)
        self.events.extend((e["event"], e.get("repeated")) for e in self._captured)


def test_lines_a_library_formats_itself_are_not_remembered_for_ever(clock: ManualClock) -> None:
    limiter = RepeatLimiter(interval_s=10.0, clock=clock)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("azure.core", logging.WARNING, "", 0, msg, (), None)

    assert limiter.filter(record("the same line"))
    assert not limiter.filter(record("the same line"))  # one held back
    for n in range(5_000):  # each text new, as an f-string makes them
        limiter.filter(record(f"request {n} failed"))
        clock.now += 0.01
    assert len(limiter._lines) <= 1_000
    clock.now += 10.0
    with structlog_capture() as ours:
        assert limiter.filter(record("the same line"))
    assert ours == [(events.LIBRARY_REPEATED, 1)]  # its count survived
