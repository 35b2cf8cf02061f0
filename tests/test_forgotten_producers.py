"""A producer Event Hubs forgets (Azure/azure-event-hubs-for-kafka#261: after timeouts,
every produce of an idempotent producer refused with InvalidPidMapping, for good) is
replaced by a new one, through the Event Hubs front (docs/eventhubs.md): the producer's
own, the dead-letter writer and the outputs' writer each go on with a new producer id, and
what the old one could not write is accounted for, never silently lost."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.clients import Feed, console_read_letters, read_all
from tests.conftest import (
    Cluster,
    EventHubsFront,
    Services,
    assert_every_send_accounted,
    eventhubs_env,
)
from tests.groups import committed

pytestmark = [pytest.mark.localkafka, pytest.mark.tools]


def _forget_now(front: EventHubsFront) -> None:
    front.configure(forget_producers_before=time.time())


def test_the_producer_replaces_a_forgotten_client_and_accounts_for_every_send(
    services: Services,
    kafka: Cluster,
    new_topic: Callable[..., str],
    eventhubs_front: EventHubsFront,
) -> None:
    topic = new_topic(2)
    producer = services.start(
        "producer", clean_env=True, **eventhubs_env(kafka, topic), PRODUCER_RATE="100"
    )
    services.wait_until(lambda: len(producer.seqs("message.sent")) >= 50, what="sending")
    _forget_now(eventhubs_front)
    services.wait_until(lambda: eventhubs_front.events("front.producer_forgotten"), what="refused")
    before = len(producer.seqs("message.sent"))
    services.wait_until(
        lambda: len(producer.seqs("message.sent")) >= before + 100, timeout=60, what="sending again"
    )
    assert producer.stop() == 0

    replaced = producer.events("producer.client_failed")
    assert replaced
    assert "InvalidProducerIdMappingError" in replaced[0]["error"]
    sent, failed = assert_every_send_accounted(producer, kafka.bootstrap_servers, topic)
    print(f"sent {len(sent)}, failed {len(failed)}")


def test_dead_letters_and_outputs_go_on_with_a_new_producer(
    services: Services,
    kafka: Cluster,
    new_topic: Callable[..., str],
    eventhubs_front: EventHubsFront,
) -> None:
    topic, out, dlt = new_topic(2), new_topic(2), new_topic(1)
    group = f"g-{topic}"
    bootstrap = kafka.bootstrap_servers
    env = {
        **eventhubs_env(kafka, topic, group),
        "CONSUMER_HANDLER": "tests.handlers:copies_or_refuses",
        "CONSUMER_OUTPUT_TOPIC": out,
        "CONSUMER_DEAD_LETTER_TOPIC": dlt,
    }
    feed = Feed(bootstrap, topic)
    feed.more(200)
    feed.one("k", "poison-1")
    consumer = services.start("consumer", clean_env=True, **env)
    services.wait_until(lambda: len(read_all(bootstrap, dlt)) == 1, timeout=60, what="a letter")
    _forget_now(eventhubs_front)
    feed.more(200)
    feed.one("k", "poison-2")
    services.wait_until(
        lambda: sum(committed(bootstrap, group, topic, 2).values()) == feed.sent + 2,
        timeout=90,
        what="everything committed",
    )
    assert consumer.stop() == 0

    assert eventhubs_front.events("front.producer_forgotten")
    failed = consumer.events("outputs.failed")
    assert failed
    assert "InvalidProducerIdMappingError" in failed[0]["error"]
    # At least once: a record handled again after the outputs' producer was replaced may
    # be dead-lettered twice; none is missing.
    letters = console_read_letters(bootstrap, dlt, len(read_all(bootstrap, dlt)))
    assert {letter["value"] for letter in letters} == {"poison-1", "poison-2"}
    outputs = {record["payload"] for record in read_all(bootstrap, out)}
    assert outputs == {f"copy-{n}" for n in range(feed.sent)}
