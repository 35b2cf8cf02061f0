"""The producer sends numbered messages; the consumer receives every one; both log JSON."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.conftest import Services, seqs

COMMON_FIELDS = {"timestamp", "level", "service", "instance", "event"}


def test_every_message_sent_is_received(services: Services, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=10)
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}")
    producer = services.start("producer", KAFKA_TOPIC=topic, PRODUCER_RATE="200")

    services.wait_until(lambda: len(seqs(producer, "message.sent")) >= 300, what="300 sends")
    stop_requested = time.monotonic()
    assert producer.stop() == 0
    # Flushed and closed well inside Docker's 10 s stop grace period.
    assert time.monotonic() - stop_requested < 5
    sent = seqs(producer, "message.sent")
    services.wait_until(
        lambda: set(sent) <= set(seqs(consumer, "message.received")), what="every seq received"
    )
    assert consumer.stop() == 0

    assert sorted(sent) == list(range(1, len(sent) + 1)), "the producer skipped a number"
    received = seqs(consumer, "message.received")
    assert len(received) == len(set(received)), "a message was processed twice"

    for service in (producer, consumer):
        assert service.stderr == "", service.stderr
        for line in service.lines:
            assert line.get("event") != "<not json>", line
            assert line.keys() >= COMMON_FIELDS, line
            assert line["service"] == service.module
            assert line["timestamp"].endswith("Z")
        assert [e["event"] for e in service.lines[:1]] == ["service.started"]
        assert service.lines[-1]["event"] == "service.stopped"

    sent_line = producer.events("message.sent")[0]
    assert {"topic", "partition", "offset", "seq"} <= sent_line.keys()
    assert sent_line["topic"] == topic
    received_line = consumer.events("message.received")[0]
    assert {"topic", "partition", "offset", "seq", "content"} <= received_line.keys()
    # A topic created a moment ago may first be assigned empty, before the
    # group leader has its metadata; the next rebalance hands out all of it.
    assignments = [e["assignment"] for e in consumer.events("partitions.assigned")]
    assert {topic: list(range(10))} in assignments
