"""A message the consumer cannot decode is logged, counted and skipped; it never dies on input."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kafka import KafkaProducer

from common import message
from tests.conftest import Services, seqs

pytestmark = pytest.mark.faults

LAG = re.compile(r"^consumer_lag_records\{.*\} \d", flags=re.MULTILINE)
#: Near the broker's default limit (message.max.bytes, 1 MiB) with room for the batch.
HUGE = 1_000_000
HOSTILE = {
    "tombstone": None,
    "not_utf8": b"\xff\xfe\x00binary",
    "not_json": b"plain text from another producer",
    "not_envelope": b'{"hello": "world"}',
}
#: Further hostile records: (key, value, reason it is skipped).
MORE_HOSTILE = [
    (b"", b"", "not_json"),
    (None, b"\xff" * HUGE, "not_utf8"),
    (b"\xff\x00\xfe", b"[1, 2, 3]", "not_envelope"),
    (b"k" * 10_000, b"\x00" * HUGE, "not_json"),
]


def test_undecodable_messages_are_skipped(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)  # one partition: the hostile ones come first, in order
    raw = KafkaProducer(
        bootstrap_servers=services.kafka.bootstrap_servers, max_request_size=HUGE + 20_000
    )
    try:
        for value in HOSTILE.values():
            raw.send(topic, key=b"k", value=value, headers=[("origin", b"test")])
        for key, value, _ in MORE_HOSTILE:
            headers = [("binary", b"\xff\x00"), ("empty", b""), ("origin", b"test")]
            raw.send(topic, key=key, value=value, headers=headers)
        # A valid message as big as the broker takes, with a binary key, is processed.
        _, big = message.encode("hostile", 1, datetime.now(UTC), HUGE)
        raw.send(topic, key=b"\xff" * 100, value=big, headers=[("bin", b"\x00\xff")])
        raw.flush()
    finally:
        raw.close()
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}")
    producer = services.start("producer", KAFKA_TOPIC=topic, PRODUCER_RATE="50")

    services.wait_until(lambda: len(seqs(consumer, "message.received")) >= 10, what="10 good ones")

    skipped = len(HOSTILE) + len(MORE_HOSTILE)

    def figure(name: str, text: str) -> float:
        found = re.search(rf"^{name}\{{.*\}} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    # Lag is recomputed every second, and a message is timed just after it is
    # counted: wait for a scrape that shows a lag and has timed every message
    # handled, the skipped ones included.
    def metrics_with_lag() -> str | None:
        text = consumer.get("/metrics")[1]
        consumed = figure("messaging_client_consumed_messages_total", text)
        timed = figure("messaging_process_duration_seconds_count", text)
        return text if LAG.search(text) and consumed and timed >= consumed + skipped else None

    metrics = services.wait_until(metrics_with_lag, what="a lag figure")
    assert producer.stop() == 0
    assert consumer.stop() == 0

    reasons = [e["reason"] for e in consumer.events("message.invalid")]
    assert reasons == [*HOSTILE, *(reason for _, _, reason in MORE_HOSTILE)]
    (big_one, *_) = [e for e in consumer.events("message.received") if e["producer"] == "hostile"]
    assert big_one["seq"] == 1
    assert len(big_one["content"]) <= 200
    for reason in HOSTILE:
        pattern = rf'consumer_invalid_messages_total{{.*reason="{reason}"}} (\S+)'
        counted = re.search(pattern, metrics)
        assert counted is not None, reason
        assert float(counted.group(1)) >= 1
    assert "Traceback" not in consumer.output()
