"""Processing slower than max.poll.interval.ms cuts batches short; it never loops on rebalances."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.conftest import Services, sasl_ssl_env, seqs

pytestmark = pytest.mark.faults


def test_slow_processing_keeps_the_partitions(
    services: Services, new_topic: Callable[..., str], prefill: Callable[..., list[int]]
) -> None:
    topic = new_topic(partitions=2)
    expected = prefill(topic, 40)
    # 40 messages of 150 ms are 6 s of work: three poll intervals of 2 s.
    # Apache Kafka's rules: Event Hubs wants the poll interval over the session timeout.
    consumer = services.start(
        "consumer",
        clean_env=True,
        **sasl_ssl_env(services.kafka, topic, f"g-{topic}"),
        KAFKA_MAX_POLL_INTERVAL_MS="2000",
        CONSUMER_SIMULATED_WORK_MS="150",
    )

    services.wait_until(
        lambda: set(seqs(consumer, "message.received")) >= set(expected),
        timeout=60,
        what="all 40 processed",
    )
    stop_requested = time.monotonic()
    assert consumer.stop() == 0
    assert time.monotonic() - stop_requested < 5

    received = seqs(consumer, "message.received")
    assert sorted(received) == expected, "a message was lost or processed twice"
    truncated = consumer.events("batch.truncated")
    assert truncated, "the slow batch was not cut short"
    assert all(cut["took_s"] < 2.0 for cut in truncated)
    # One membership from start to end: never thrown out, never a second join;
    # the partitions go only when the stop hands them back.
    names = [line["event"] for line in consumer.lines]
    losses = [name for name in names if name in ("partitions.lost", "partitions.revoked")]
    assert losses == ["partitions.revoked"]
    assert names[names.index("consumer.closed") - 1] == "partitions.revoked"
    full = [e for e in consumer.events("partitions.assigned") if e["assignment"] == {topic: [0, 1]}]
    assert len(full) == 1
    assert "poll timeout has expired" not in consumer.output()
    assert "Traceback" not in consumer.output()


def test_stop_does_not_wait_for_a_slow_batch(
    services: Services, new_topic: Callable[..., str], prefill: Callable[..., list[int]]
) -> None:
    topic = new_topic(partitions=1)
    prefill(topic, 200)
    # 200 messages of 100 ms: a batch would take 20 s, longer than Docker's grace period.
    consumer = services.start(
        "consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}", CONSUMER_SIMULATED_WORK_MS="100"
    )
    services.wait_until(lambda: seqs(consumer, "message.received"), what="processing started")

    stop_requested = time.monotonic()
    assert consumer.stop() == 0
    assert time.monotonic() - stop_requested < 5

    processed = seqs(consumer, "message.received")
    assert processed == list(range(1, len(processed) + 1))
    assert len(processed) < 200
    # The next member starts right after the last message processed: none lost, none twice.
    successor = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}")
    services.wait_until(
        lambda: 200 in seqs(successor, "message.received"), what="the rest processed"
    )
    assert successor.stop() == 0
    assert seqs(successor, "message.received") == list(range(len(processed) + 1, 201))
