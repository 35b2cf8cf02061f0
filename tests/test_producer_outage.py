"""A broker outage costs the producer failed or delayed sends, never its life or a delivery."""

from __future__ import annotations

import re

import pytest

import localkafka
from tests.conftest import (
    OwnBroker,
    Services,
    assert_every_send_accounted,
    sasl_ssl_env,
    seqs,
    shared_access_key,
)

pytestmark = [pytest.mark.faults, pytest.mark.localkafka]

ERRORS = re.compile(r"^producer_send_errors_total\{.*\} (\S+)$", re.MULTILINE)


def test_producer_rides_out_a_broker_outage(services: Services, own_broker: OwnBroker) -> None:
    address = own_broker.broker.plaintext
    localkafka.create_topic(own_broker.broker, "outage", partitions=3)
    services.secrets |= {shared_access_key(own_broker.broker.connection_string)}
    producer = services.start(
        "producer",
        clean_env=True,
        # SASL_SSL through the Event Hubs front, by address: Event Hubs' rules
        # would not allow the short timeouts below.
        **sasl_ssl_env(own_broker.cluster, "outage"),
        PRODUCER_RATE="50",
        # Short, so that the outage outlasts it and sends fail instead of only waiting.
        KAFKA_DELIVERY_TIMEOUT_MS="3000",
        KAFKA_REQUEST_TIMEOUT_MS="2000",
    )
    services.wait_until(lambda: len(seqs(producer, "message.sent")) >= 50, what="50 sent")

    own_broker.stop()
    services.wait_until(
        lambda: len(seqs(producer, "message.failed")) >= 10, what="sends failing in the outage"
    )
    status, reason = producer.get("/readyz")
    assert status == 503
    assert "last send failed" in reason
    errors = ERRORS.findall(producer.get("/metrics")[1])
    assert sum(float(count) for count in errors) >= 10
    assert producer.process.poll() is None, "the producer gave up"

    own_broker.restart()
    last_failed = max(seqs(producer, "message.failed"))
    services.wait_until(
        lambda: [seq for seq in seqs(producer, "message.sent") if seq > last_failed + 50],
        timeout=60,
        what="sends resuming after the restart",
    )
    # Ready again once the answers of the sends the outage held have all come in.
    services.wait_until(lambda: producer.get("/readyz")[0] == 200, what="ready again")
    assert producer.stop() == 0

    assert_every_send_accounted(producer, address, "outage")
    assert "Traceback" not in producer.output()
