"""kcat (librdkafka) and our services understand each other: records, offsets, one group."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clients import kcat, kcat_command, read_all
from tests.conftest import Services, assert_shares_a_group

pytestmark = pytest.mark.usefixtures("kcat_installed")


def test_kcat_records_reach_our_consumer(
    services: Services, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = services.kafka.bootstrap_servers
    topic = new_topic(partitions=3)
    kcat(bootstrap, "-P", "-t", topic, stdin=b"plain text\nmore plain text\n")
    kcat(bootstrap, "-P", "-t", topic, "-K:", stdin=b"k1:keyed line\nk2:another keyed line\n")
    kcat(bootstrap, "-P", "-t", topic, "-H", "origin=kcat", "-H", "trace=1", stdin=b"headed\n")
    kcat(bootstrap, "-P", "-t", topic, "-Z", "-K:", stdin=b"gone:\n")  # a tombstone
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\x00\xff\xfe\x01 not text")
    kcat(bootstrap, "-P", "-t", topic, str(binary))  # one file, one record
    written = read_all(bootstrap, topic)
    assert len(written) == 7

    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}")
    services.wait_until(lambda: len(consumer.events("message.received")) >= 7, what="7 records")
    assert consumer.stop() == 0

    seen = {(e["partition"], e["offset"]): e for e in consumer.events("message.received")}
    assert len(seen) == 7
    for record in written:
        line = seen[(record["partition"], record["offset"])]
        assert line["key"] == record["key"]
        if record["payload"] is None:
            assert (line["kind"], line["content"]) == ("tombstone", None)
        elif record["payload"].startswith("\x00"):
            assert line["content"] == "base64:AP/+ASBub3QgdGV4dA=="
        else:
            assert (line["kind"], line["content"]) == ("other", record["payload"])
    headed = next(e for e in seen.values() if e["content"] == "headed")
    assert headed["headers"] == [["origin", "kcat"], ["trace", "1"]]
    assert "Traceback" not in consumer.output()


def test_kcat_reads_what_our_producer_sent(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=4)
    producer = services.start("producer", KAFKA_TOPIC=topic, PRODUCER_RATE="100")
    services.wait_until(lambda: len(producer.events("message.sent")) >= 30, what="30 sent")
    assert producer.stop() == 0

    sent = producer.events("message.sent")
    stored = {
        (r["partition"], r["offset"]): r for r in read_all(services.kafka.bootstrap_servers, topic)
    }
    assert len(stored) == len(sent)
    for line in sent:
        record = stored[(line["partition"], line["offset"])]
        envelope = json.loads(record["payload"])
        assert (envelope["producer"], envelope["seq"]) == (line["producer"], line["seq"])
        assert record["key"].startswith("key-")


def test_kcat_shares_a_group_with_our_consumer(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=10)
    group = f"g-{topic}"
    ours = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group)
    # librdkafka's default assignors: range, roundrobin.
    command = kcat_command(
        services.kafka.bootstrap_servers,
        "-G", group, "-J", "-q", "-u", "-X", "auto.offset.reset=earliest", topic,
    )  # fmt: skip

    assert_shares_a_group(
        services,
        topic,
        ours,
        join=lambda: services.start_command("kcat", command),
        their_partitions=lambda kcat: [r["partition"] for r in kcat.lines if "payload" in r],
    )
