"""A group coordinator that cannot be reached is one line of ours with the reason
(tls, refused, timed_out), at once and then once per interval with a count, instead of
kafka-python's "Marking the coordinator dead" on every try."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
import structlog
import trustme
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError, RequestTimedOutError

import localkafka
from common import events
from common.clients import _compat as kafka_compat
from tests.conftest import ManualClock, OwnBroker, Services


class _ConnectionLosses(logging.Handler):
    """The errors of kafka-python's own "Connection lost" lines."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 2 and isinstance(args[1], BaseException):
            self.errors.append(args[1])


def _failures_connecting_to(address: str, **config: object) -> list[BaseException]:
    """What kafka-python's real connection code says when it cannot reach *address*."""
    losses = _ConnectionLosses()
    logger = logging.getLogger("kafka.net.connection")
    logger.addHandler(losses)
    try:
        with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
            KafkaProducer(
                bootstrap_servers=address,
                request_timeout_ms=500,
                bootstrap_timeout_ms=1500,
                **config,
            )
    finally:
        logger.removeHandler(losses)
    assert losses.errors, "kafka-python said nothing of the failed connection"
    return losses.errors


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server


def _address(server: socket.socket) -> str:
    host, port = server.getsockname()
    return f"{host}:{port}"


def test_a_refused_connection_is_refused() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = _address(closed)  # bound, never listening: connections are refused
    errors = _failures_connecting_to(address)
    assert {kafka_compat.reason_of(e) for e in errors} == {"refused"}


def test_a_certificate_from_another_ca_is_tls(listener: socket.socket) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # the test closed the listener
            with connection, pytest.raises(ssl.SSLError):
                context.wrap_socket(connection, server_side=True)

    threading.Thread(target=serve, daemon=True).start()
    errors = _failures_connecting_to(_address(listener), security_protocol="SSL")
    assert {kafka_compat.reason_of(e) for e in errors} == {"tls"}


def test_a_broker_that_never_answers_is_timed_out(listener: socket.socket) -> None:
    # The kernel accepts the connection; nothing ever answers ApiVersions.
    errors = _failures_connecting_to(_address(listener))
    assert {kafka_compat.reason_of(e) for e in errors} == {"timed_out"}


def _record(msg: str, *args: object, name: str = "kafka.coordinator") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, "", 0, msg, args, None)


class _Connection:
    """What kafka-python's "Connection lost" line carries as its first argument."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id


def test_the_cause_is_said_once_per_interval_with_a_count(clock: ManualClock) -> None:
    watch = kafka_compat.CoordinatorWatch(interval_s=10.0, clock=clock)
    refused = ConnectionRefusedError(111, "Connection refused")
    dead = "Marking the coordinator dead (node %s) for group %s: %s."
    shown = []
    with structlog.testing.capture_logs() as ours:
        for _ in range(500):  # 500 tries in 5 s, as kafka-python makes them
            lost = _record("%s: Connection lost: %s", _Connection("coordinator-1"), refused)
            assert watch.remember_connection_loss(lost)
            dead_line = _record(dead, "coordinator-1", "g", "Node Disconnected")
            shown.append(watch.say_coordinator_unavailable(dead_line))
            clock.now += 0.01
        clock.now += 5.0
        watch.say_coordinator_unavailable(_record(dead, "coordinator-1", "g", "Node Disconnected"))
    assert not any(shown), "kafka-python's own line went through"
    assert [(e["event"], e["reason"], e["repeated"]) for e in ours] == [
        (events.COORDINATOR_UNAVAILABLE, "refused", 0),
        # No fresh cause for the last try: kafka-python's own reason, said as it is.
        (events.COORDINATOR_UNAVAILABLE, "disconnected", 0),
    ]
    assert ours[0]["node"] == "coordinator-1"


def test_a_failed_search_for_the_coordinator_says_its_own_error(clock: ManualClock) -> None:
    watch = kafka_compat.CoordinatorWatch(interval_s=10.0, clock=clock)
    failed = "Error sending %s to node %s [%s]"
    timed_out = RequestTimedOutError("Request timed out after 30000 ms")
    with structlog.testing.capture_logs() as ours:
        assert not watch.say_coordinator_unavailable(
            _record(failed, "FindCoordinatorRequest", 1, timed_out)
        )
    assert [(e["node"], e["reason"]) for e in ours] == [("1", "timed_out")]


def test_other_lines_pass_untouched() -> None:
    watch = kafka_compat.CoordinatorWatch()
    assert watch.say_coordinator_unavailable(_record("Heartbeat failed for group %s", "g"))
    other = _record("%s: Connection lost: %s", _Connection("1"), OSError("x"), name="kafka.net")
    assert watch.remember_connection_loss(other)


@pytest.mark.faults
@pytest.mark.localkafka
def test_a_consumer_whose_broker_goes_away_says_why_in_lines_of_its_own(
    services: Services, own_broker: OwnBroker
) -> None:
    localkafka.create_topic(own_broker.broker, "gone", partitions=2)
    consumer = services.start(
        "consumer",
        KAFKA_BOOTSTRAP_SERVERS=own_broker.broker.plaintext,
        KAFKA_TOPIC="gone",
        KAFKA_GROUP_ID="g",
    )
    services.wait_until(consumer.assignment, what="partitions assigned")
    own_broker.stop()

    def refused() -> list[dict[str, object]]:
        # A broker shutting down first says NotCoordinatorError (the coordinator moved),
        # then refuses connections once it is gone.
        lines = consumer.events(events.COORDINATOR_UNAVAILABLE)
        return [line for line in lines if line["reason"] == "refused"]

    (line, *_) = services.wait_until(refused, what="coordinator.unavailable reason=refused")
    assert "ECONNREFUSED" in str(line["error"])
    # Wait out an interval: the next line counts the tries in between.
    (_, again, *_) = services.wait_until(
        lambda: refused()[1:] and refused(), timeout=40, what="a second line, an interval later"
    )
    assert int(str(again["repeated"])) >= 1
    assert "Marking the coordinator dead" not in consumer.output()
    consumer.stop()
    assert "Traceback" not in consumer.output()
