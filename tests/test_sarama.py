"""The Go walkthrough's own client, Sarama, and our services: both ways, and one group, over
SASL_SSL with ``$ConnectionString`` and verified TLS, as against Event Hubs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Services, assert_shares_a_group, eventhubs_env, seqs


def sarama_env(services: Services, topic: str, group: str = "") -> dict[str, str]:
    """The walkthrough's variables, exactly as our services get them."""
    return eventhubs_env(services.kafka, topic, group)


def test_the_walkthroughs_producer_feeds_our_consumer(
    services: Services, new_topic: Callable[..., str], sarama: Path
) -> None:
    topic = new_topic(partitions=4)
    env = sarama_env(services, topic, f"g-{topic}")
    produced = subprocess.run(
        [str(sarama), "produce", "19"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sent = [json.loads(line) for line in produced.stdout.splitlines()]
    assert len(sent) == 19

    consumer = services.start("consumer", clean_env=True, **env)
    services.wait_until(lambda: len(consumer.events("message.received")) >= 19, what="19 records")
    assert consumer.stop() == 0

    received = {(e["partition"], e["offset"]): e for e in consumer.events("message.received")}
    for record in sent:
        line = received[(record["partition"], record["offset"])]
        assert (line["key"], line["content"], line["kind"]) == (
            record["key"],
            record["value"],
            "other",
        )
    assert consumer.events("service.started")[0]["security_protocol"] == "SASL_SSL"


def test_the_walkthroughs_consumer_reads_our_producer(
    services: Services, new_topic: Callable[..., str], sarama: Path
) -> None:
    topic = new_topic(partitions=4)
    env = sarama_env(services, topic, f"sarama-{topic}")
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="100", **env)
    services.wait_until(lambda: len(seqs(producer, "message.sent")) >= 30, what="30 sent")
    assert producer.stop() == 0
    sent = {(e["partition"], e["offset"]): e["seq"] for e in producer.events("message.sent")}

    theirs = services.start_command("sarama", [str(sarama), "consume"], env)
    services.wait_until(
        lambda: len(theirs.events("message")) >= len(sent), what="Sarama read them all"
    )
    theirs.stop()

    read = {
        (e["partition"], e["offset"]): json.loads(e["value"])["seq"]
        for e in theirs.events("message")
    }
    assert read == sent


def test_sarama_on_its_defaults_shares_a_group_with_ours(
    services: Services, new_topic: Callable[..., str], sarama: Path, kcat_installed: None
) -> None:
    topic = new_topic(partitions=10)
    env = sarama_env(services, topic, f"g-{topic}")
    ours = services.start("consumer", clean_env=True, **env)

    theirs = assert_shares_a_group(
        services,
        topic,
        ours,
        join=lambda: services.start_command("sarama", [str(sarama), "consume"], env),  # range
        their_partitions=lambda sarama: [e["partition"] for e in sarama.events("message")],
    )
    assert theirs.events("closed"), "Sarama left the group cleanly"
