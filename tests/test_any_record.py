"""Any producer's records are processed: logged, shown safely, counted; never a crash."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kafka import KafkaProducer

from common import message
from consumer.records import shown
from tests.conftest import Services

pytestmark = pytest.mark.faults


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


#: Near the broker's default limit (message.max.bytes, 1 MiB) with room for the batch.
HUGE = 1_000_000
#: (key, value, headers, what the consumer shows: kind, key, content).
RECORDS = [
    (b"k", None, [], ("tombstone", "k", None)),
    (b"k", b"value-1732600000", [], ("other", "k", "value-1732600000")),
    (None, b'{"hello": "world"}', [], ("other", None, '{"hello": "world"}')),
    (b"", b"", [], ("other", "", "")),
    (b"k", "é" * 300, [], ("other", "k", "é" * 200)),
    (b"\xff\x00\xfe", b"\xff\xfe\x00binary", [], ("other", "base64:/wD+", "base64://4AYmluYXJ5")),
    (None, b"\xff" * HUGE, [], ("other", None, "base64:" + b64(b"\xff" * 200))),
    # Valid UTF-8, but control characters are no text to print: shown in base64 too.
    (b"k" * 10_000, b"\x00" * HUGE, [], ("other", "k" * 200, "base64:" + b64(b"\x00" * 200))),
    (b"h", b"with headers", [("binary", b"\xff\x00"), ("empty", b""), ("origin", b"test")], None),
]


def test_every_record_is_processed_and_shown_safely(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)  # one partition: records come back in order
    raw = KafkaProducer(
        bootstrap_servers=services.kafka.bootstrap_servers, max_request_size=HUGE + 20_000
    )
    try:
        for key, value, headers, _ in RECORDS:
            data = value.encode() if isinstance(value, str) else value
            raw.send(topic, key=key, value=data, headers=headers)
        # Our envelope, as big as the broker takes, with a binary key.
        _, big = message.encode("ours", 1, message.stamp(datetime.now(UTC)), HUGE)
        raw.send(topic, key=b"\xff" * 100, value=big)
        raw.flush()
    finally:
        raw.close()
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}")

    wanted = len(RECORDS) + 1
    services.wait_until(
        lambda: len(consumer.events("message.received")) >= wanted, what="every record"
    )

    def counted(text: str, kind: str) -> float:
        found = re.search(
            rf'^messaging_client_consumed_messages_total{{.*kind="{kind}".*}} (\S+)$', text, re.M
        )
        return float(found.group(1)) if found else 0.0

    def all_counted() -> str | None:
        # Counted per batch: the big records may come in batches of their own.
        text = consumer.get("/metrics")[1]
        kinds = {"other": 8, "tombstone": 1, "envelope": 1}
        return text if all(counted(text, k) >= n for k, n in kinds.items()) else None

    metrics = services.wait_until(all_counted, what="every record counted")
    assert consumer.stop() == 0

    received = consumer.events("message.received")
    assert [line["offset"] for line in received] == list(range(wanted))
    for line, (_, _, _, expected) in zip(received, RECORDS, strict=False):
        if expected is not None:
            assert (line["kind"], line["key"], line["content"]) == expected, line
        assert "seq" not in line
        assert line["timestamp"].startswith(str(datetime.now(UTC).year))
    assert received[8]["headers"] == [["binary", "base64:/wA="], ["empty", ""], ["origin", "test"]]
    ours = received[-1]
    assert (ours["kind"], ours["seq"], ours["producer"]) == ("envelope", 1, "ours")
    assert len(ours["content"]) == 200
    assert counted(metrics, "other") == 8
    assert counted(metrics, "tombstone") == 1
    assert counted(metrics, "envelope") == 1
    assert re.search(r"^consumer_end_to_end_latency_seconds_count\{.*\} 10\.0$", metrics, re.M), (
        "every record with a timestamp is timed, the tombstone too: it has a timestamp"
    )
    assert not consumer.events("message.invalid")
    assert "Traceback" not in consumer.output()


@given(st.binary(max_size=1200) | st.text(max_size=400).map(str.encode))
@example(b"base64:")  # text that looks as if it were shown in base64 already
def test_any_value_is_shown_as_a_prefix_of_its_text_or_in_base64(data: bytes) -> None:
    text = shown(data, limit=100)

    assert text is not None
    if text.startswith("base64:"):
        assert base64.b64decode(text.removeprefix("base64:")) == data[:100]
    else:
        # The value's own first characters: all of them, or the first 100.
        assert data.startswith(text.encode("utf-8"))
        assert len(text) == 100 or text.encode("utf-8") == data


def test_a_cut_never_splits_a_character() -> None:
    # 4-byte characters: the 400-byte head ends exactly on one, or inside the next.
    for prefix in ("", "a", "ab", "abc"):
        value = (prefix + "😀" * 150).encode()
        assert shown(value, limit=100) == (prefix + "😀" * 150)[:100]
