"""Consumers of one group share the partitions, and a stopping consumer hands them back."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness import ServiceProcess
from tests.conftest import Services, seqs

ALL = list(range(10))


def owned(consumer: ServiceProcess, topic: str) -> list[int]:
    return (consumer.assignment() or {}).get(topic, [])


def test_scale_out_and_in(services: Services, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=10)
    group = f"g-{topic}"
    producer = services.start("producer", KAFKA_TOPIC=topic, PRODUCER_RATE="100")
    first = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group)
    services.wait_until(lambda: owned(first, topic) == ALL, what="first owns all 10")

    second = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group)

    def split() -> bool:
        a, b = owned(first, topic), owned(second, topic)
        return bool(a) and bool(b) and sorted(a + b) == ALL

    services.wait_until(split, what="two disjoint halves covering all 10")
    assert len(owned(first, topic)) == 5
    assert len(owned(second, topic)) == 5

    stopped_at = time.monotonic()
    assert second.stop() == 0
    services.wait_until(lambda: owned(first, topic) == ALL, timeout=3, what="handover in 3 s")
    handover = time.monotonic() - stopped_at
    assert handover < 3

    assert producer.stop() == 0
    sent = set(seqs(producer, "message.sent"))
    services.wait_until(
        lambda: (
            sent <= set(seqs(first, "message.received")) | set(seqs(second, "message.received"))
        ),
        what="every sequence number received by one of the two",
    )
    assert first.stop() == 0
    received = seqs(first, "message.received") + seqs(second, "message.received")
    assert len(received) == len(set(received)), "a clean rebalance re-delivered messages"
    assert second.events("partitions.revoked")[-1]["assignment"] == {}


def test_a_new_groups_first_assignment_is_the_whole_topic(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=10)
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}")
    services.wait_until(lambda: owned(consumer, topic) == ALL, what="all 10")
    assert consumer.stop() == 0

    # Not an empty assignment first and a second rebalance a moment later.
    assignments = [line["assignment"] for line in consumer.events("partitions.assigned")]
    assert assignments == [{topic: ALL}]
