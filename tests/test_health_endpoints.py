"""/metrics, /healthz and /readyz answer as documented, with or without a broker."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable

from tests.conftest import Services


def test_unreachable_broker_is_retried_and_not_ready(services: Services) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening
    consumer = services.start(
        "consumer", KAFKA_BOOTSTRAP_SERVERS=nobody, KAFKA_TOPIC="t", KAFKA_GROUP_ID="g"
    )

    services.wait_until(lambda: len(consumer.events("broker.unavailable")) >= 2, what="2 retries")
    # The cause, not just kafka-python's "Unable to bootstrap" timeout.
    assert "ECONNREFUSED" in consumer.events("broker.unavailable")[0]["error"]
    assert consumer.get("/healthz")[0] == 200
    status, body = consumer.get("/readyz")
    assert status == 503
    assert body.strip()

    stop_requested = time.monotonic()
    assert consumer.stop() == 0
    assert time.monotonic() - stop_requested < 10, "SIGTERM must beat Docker's 10 s grace period"
    assert "Traceback" not in consumer.output()


def test_endpoints_of_a_working_consumer(services: Services, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=3)
    consumer = services.start(
        "consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}", LOG_LEVEL="DEBUG"
    )
    services.wait_until(lambda: consumer.assignment() == {topic: [0, 1, 2]}, what="3 partitions")
    # kafka-python's own records come through the same JSON pipeline as ours.
    kafka_lines = [line for line in consumer.lines if line.get("logger", "").startswith("kafka")]
    assert kafka_lines
    assert all({"timestamp", "level", "service", "instance"} <= line.keys() for line in kafka_lines)
    assert not consumer.events("<not json>")
    services.wait_until(lambda: consumer.get("/readyz")[0] == 200, what="ready")

    status, metrics = consumer.get("/metrics")
    assert status == 200
    assert f'consumer_assigned_partitions{{messaging_destination_name="{topic}"}} 3.0' in metrics
    rebalances = re.search(r"^consumer_rebalances_total (\S+)$", metrics, flags=re.MULTILINE)
    assert rebalances is not None
    assert float(rebalances.group(1)) >= 1
    assert consumer.get("/healthz") == (200, "ok\n")
    assert consumer.get("/nope")[0] == 404
    assert consumer.stop() == 0


def test_metrics_host_takes_an_ipv6_address(services: Services) -> None:
    consumer = services.start(
        "consumer",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        KAFKA_TOPIC="t",
        KAFKA_GROUP_ID="g",
        METRICS_HOST="::",
    )
    services.wait_until(lambda: consumer.events("service.started"), what="started")

    assert consumer.get("/healthz", host="::1") == (200, "ok\n")
    # "::" is every address, IPv4 ones too: Docker's healthcheck asks 127.0.0.1.
    assert consumer.get("/healthz", host="127.0.0.1") == (200, "ok\n")
    assert consumer.stop() == 0
    assert not consumer.events("service.failed")
