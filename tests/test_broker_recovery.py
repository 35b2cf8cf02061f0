"""A service started before its broker waits, alive but not ready, and recovers on its own."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

import localkafka
from tests.conftest import Services, seqs

#: How long the broker stays away: longer than the longest backoff and the
#: liveness grace together, which is where /healthz used to turn 503.
OUTAGE_S = 60
#: How often the test probes the endpoints, as a liveness probe would.
PROBE_EVERY_S = 5


@pytest.mark.faults
@pytest.mark.localkafka
def test_consumer_and_producer_recover_when_the_broker_arrives(
    services: Services, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    topic = "late"
    consumer = services.start(
        "consumer", KAFKA_BOOTSTRAP_SERVERS=address, KAFKA_TOPIC=topic, KAFKA_GROUP_ID="g"
    )
    producer = services.start(
        "producer", KAFKA_BOOTSTRAP_SERVERS=address, KAFKA_TOPIC=topic, PRODUCER_RATE="50"
    )
    services.wait_until(
        lambda: consumer.events("broker.unavailable") and producer.events("broker.unavailable"),
        what="both services retrying",
    )
    # Waiting for a broker is the service doing its job: alive throughout, not ready.
    outage_ends = time.monotonic() + OUTAGE_S
    probes = 0
    while (left := outage_ends - time.monotonic()) > 0:
        for service in (consumer, producer):
            assert service.get("/healthz") == (200, "ok\n"), f"{service.module} after {probes}"
            status, reason = service.get("/readyz")
            assert status == 503
            assert "no broker reachable" in reason
        probes += 1
        threading.Event().wait(min(left, PROBE_EVERY_S))
    # The outage lasted into the long waits: 16 s and more, on top of 5 s tries.
    assert max(line["retry_in_s"] for line in consumer.events("broker.unavailable")) >= 16

    broker = localkafka.start(tmp_path, plaintext_port=port, bind_to_parent=True)
    try:
        localkafka.create_topic(broker, topic, partitions=2)
        services.wait_until(
            lambda: len(seqs(consumer, "message.received")) >= 10,
            timeout=90,
            what="messages flowing after the broker came up",
        )
        assert consumer.get("/readyz")[0] == 200
        assert producer.get("/readyz")[0] == 200
        assert producer.stop() == 0
        assert consumer.stop() == 0
    finally:
        localkafka.stop(tmp_path)
    assert "Traceback" not in consumer.output() + producer.output()


@pytest.mark.faults
def test_a_broker_name_that_does_not_resolve_is_retried_and_named(services: Services) -> None:
    # .invalid never resolves (RFC 2606); in compose a name resolves only once its
    # container exists, so the services wait instead of giving up.
    consumer = services.start(
        "consumer",
        KAFKA_BOOTSTRAP_SERVERS="kafka.invalid:9092",
        KAFKA_TOPIC="t",
        KAFKA_GROUP_ID="g",
    )
    services.wait_until(lambda: len(consumer.events("broker.unavailable")) >= 2, what="two retries")

    assert consumer.get("/readyz")[0] == 503
    assert consumer.get("/healthz")[0] == 200
    assert consumer.stop() == 0
    retry = consumer.events("broker.unavailable")[0]
    assert retry["bootstrap_servers"] == "kafka.invalid:9092"  # the address it tried
    assert "kafka.invalid" in retry["error"] or "resol" in retry["error"].lower(), retry
    assert [line["level"] for line in consumer.lines].count("error") == 0
    assert "Traceback" not in consumer.output()
