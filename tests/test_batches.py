"""A batch handler against the real broker, directly and through the Event Hubs front with
the walkthrough's variables: records kcat wrote come in batches of one partition in offset
order, no larger than asked; a batch holding a poison record is handed over one record at
a time, the poison one alone dead-lettered (read back by Kafka's console consumer) and
every other handled; everything is committed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.clients import console_read_letters, kcat
from tests.conftest import Cluster, Services, eventhubs_env

pytestmark = [pytest.mark.localkafka, pytest.mark.tools]

PARTITIONS = 3
RECORDS = 600
POISON = 250


def _committed(bootstrap: str, group: str, topic: str) -> int:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        return sum(reader.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS))
    finally:
        reader.close()


@pytest.mark.parametrize("via", ["kafka", "eventhubs"])
def test_batches_of_one_partition_and_only_the_poison_record_dead_lettered(
    services: Services, kafka: Cluster, new_topic: Callable[..., str], via: str
) -> None:
    topic, dead = new_topic(PARTITIONS), new_topic(1)
    group = f"g-{topic}"
    lines = "".join(f"k{n % 7}:{'poison' if n == POISON else 'ok'}-{n}\n" for n in range(RECORDS))
    kcat(kafka.bootstrap_servers, "-P", "-t", topic, "-K:", stdin=lines.encode())
    settings = {
        "CONSUMER_HANDLER": "tests.handlers:logs_batches",
        "CONSUMER_BATCH_MAX_RECORDS": "50",
        "CONSUMER_DEAD_LETTER_TOPIC": dead,
        "CONSUMER_RETRY_ATTEMPTS": "2",
        "CONSUMER_RETRY_BACKOFF_MS": "10",
    }
    if via == "eventhubs":
        consumer = services.start(
            "consumer", clean_env=True, **eventhubs_env(kafka, topic, group), **settings
        )
    else:
        consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group, **settings)
    services.wait_until(
        lambda: _committed(kafka.bootstrap_servers, group, topic) == RECORDS,
        timeout=60,
        what="every record committed",
    )
    assert consumer.stop() == 0

    handled = sorted(int(line["value"].split("-")[1]) for line in consumer.events("test.handled"))
    assert handled == [n for n in range(RECORDS) if n != POISON]
    batches = consumer.events("test.batch")
    assert all(0 < len(b["offsets"]) <= 50 for b in batches)
    assert all(b["offsets"] == sorted(b["offsets"]) for b in batches)
    assert any(len(b["offsets"]) > 1 for b in batches)
    letters = console_read_letters(kafka.bootstrap_servers, dead, 1)
    assert [letter["value"] for letter in letters] == [f"poison-{POISON}"]
    assert letters[0]["dlt.exception.type"] == "consumer.handler.RecordRefused"
