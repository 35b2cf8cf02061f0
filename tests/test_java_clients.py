"""Kafka's own Java clients and our services: every codec both ways, one group, the same keys."""

from __future__ import annotations

import json
from collections.abc import Callable

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from tests.clients import (
    CONSOLE_CONSUMER,
    CONSOLE_PRINT,
    CONSOLE_PRODUCER,
    console_records,
    java,
    java_command,
    read_all,
)
from tests.conftest import Services, assert_shares_a_group, seqs

CODECS = ("gzip", "snappy", "lz4", "zstd")
PER_CODEC = 25


def test_java_producer_batches_of_every_codec_reach_our_consumer(
    services: Services, new_topic: Callable[..., str]
) -> None:
    bootstrap = services.kafka.bootstrap_servers
    topic = new_topic(partitions=3)
    for codec in CODECS:
        lines = b"".join(
            b"%s-%d:%s line %d\n" % (codec.encode(), i, codec.encode(), i) for i in range(PER_CODEC)
        )
        java(
            CONSOLE_PRODUCER,
            "--bootstrap-server", bootstrap,
            "--topic", topic,
            "--compression-codec", codec,
            "--property", "parse.key=true",
            "--property", "key.separator=:",
            stdin=lines,
        )  # fmt: skip
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}")

    total = PER_CODEC * len(CODECS)
    services.wait_until(
        lambda: len(consumer.events("message.received")) >= total, what=f"{total} records"
    )
    assert consumer.stop() == 0
    received = {line["key"]: line["content"] for line in consumer.events("message.received")}
    for codec in CODECS:
        for i in range(PER_CODEC):
            assert received[f"{codec}-{i}"] == f"{codec} line {i}"
    assert not consumer.events("consumer.poll_failed")
    assert not consumer.events("service.failed")


def test_java_consumer_reads_our_producer_with_every_codec(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=3)
    sent: dict[str, list[int]] = {}
    for codec in ("none", *CODECS):
        producer = services.start(
            "producer", KAFKA_TOPIC=topic, PRODUCER_RATE="200", KAFKA_COMPRESSION_TYPE=codec
        )
        services.wait_until(
            lambda p=producer: len(seqs(p, "message.sent")) >= 20,  # type: ignore[misc]
            what="20 sent",
        )
        assert producer.stop() == 0
        sent[producer.events("message.sent")[0]["producer"]] = seqs(producer, "message.sent")
    total = sum(len(numbers) for numbers in sent.values())

    out = java(
        CONSOLE_CONSUMER,
        "--bootstrap-server", services.kafka.bootstrap_servers,
        "--topic", topic,
        "--from-beginning",
        "--max-messages", str(total),
        "--timeout-ms", "30000",
        *CONSOLE_PRINT,
    )  # fmt: skip

    read: dict[str, list[int]] = {}
    for _, _, key, value in console_records(out):
        envelope = json.loads(value)
        assert key.startswith("key-")
        read.setdefault(envelope["producer"], []).append(envelope["seq"])
    assert {name: sorted(numbers) for name, numbers in read.items()} == {
        name: sorted(numbers) for name, numbers in sent.items()
    }


def test_java_consumer_on_its_defaults_shares_a_group_with_ours(
    services: Services, new_topic: Callable[..., str], kcat_installed: None
) -> None:
    topic = new_topic(partitions=10)
    group = f"g-{topic}"
    ours = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group)
    # The Java client's default assignors: range, cooperative-sticky.
    command = java_command(
        CONSOLE_CONSUMER,
        "--bootstrap-server", services.kafka.bootstrap_servers,
        "--topic", topic,
        "--group", group,
        # Its own default is latest: it could miss what comes before it has a position.
        "--consumer-property", "auto.offset.reset=earliest",
        *CONSOLE_PRINT,
    )  # fmt: skip

    assert_shares_a_group(
        services,
        topic,
        ours,
        join=lambda: services.start_command("java-console-consumer", command),
        their_partitions=lambda java: [p for p, *_ in console_records("".join(java.raw))],
    )


def test_our_keys_land_where_the_java_producer_puts_them(
    services: Services, new_topic: Callable[..., str]
) -> None:
    bootstrap = services.kafka.bootstrap_servers
    ours_topic, java_topic = new_topic(partitions=10), new_topic(partitions=10)
    producer = services.start("producer", KAFKA_TOPIC=ours_topic, PRODUCER_RATE="200")
    services.wait_until(lambda: len(producer.events("message.sent")) >= 50, what="50 sent")
    assert producer.stop() == 0
    ours = {record["key"]: record["partition"] for record in read_all(bootstrap, ours_topic)}

    java(
        CONSOLE_PRODUCER,
        "--bootstrap-server", bootstrap,
        "--topic", java_topic,
        "--property", "parse.key=true",
        "--property", "key.separator=\t",
        stdin="".join(f"{key}\tsame key\n" for key in ours).encode(),
    )  # fmt: skip
    theirs = {record["key"]: record["partition"] for record in read_all(bootstrap, java_topic)}

    assert theirs == ours
    assert len(set(ours.values())) > 1, "keys spread over several partitions"


def test_assignors_no_other_member_lists_are_one_clear_line(
    services: Services, new_topic: Callable[..., str]
) -> None:
    bootstrap = services.kafka.bootstrap_servers
    topic = new_topic(partitions=2)
    group = f"g-{topic}"
    theirs = services.start_command(
        "java-console-consumer",
        java_command(CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic,
                     "--group", group),
    )  # fmt: skip
    services.wait_until(
        lambda: _members(bootstrap, group), timeout=60, what="the Java consumer in the group"
    )
    ours = services.start(
        "consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group,
        KAFKA_PARTITION_ASSIGNMENT_STRATEGY="sticky",
    )  # fmt: skip

    services.wait_until(
        lambda: len(ours.events("group.protocol_mismatch")) >= 2, what="two clear lines"
    )
    theirs.stop()
    assert ours.stop() == 0
    first, second = ours.events("group.protocol_mismatch")[:2]
    assert "KAFKA_PARTITION_ASSIGNMENT_STRATEGY" in first["hint"]
    assert first["assignors"] == "sticky"
    assert second["retry_in_s"] > first["retry_in_s"], "backed off"
    errors = {line["event"] for line in ours.lines if line["level"] == "error"}
    assert errors == {"group.protocol_mismatch"}


def _members(bootstrap: str, group: str) -> int:
    """How many members the broker has in *group* now."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        description = admin.describe_groups([group])[group]
    except KafkaError:
        return 0  # no coordinator for the group yet: nobody has joined it
    finally:
        admin.close()
    return len(description.get("members") or ())
