"""A consumer cut off from its broker for longer than its session timeout, one record at a
time or records side by side in key order, is expelled by the group; it handles nothing
more as an expelled member, rejoins once the network heals, and starts again from the
committed offsets: nothing lost, and no record handled twice beyond what was handled and
not yet committed before it was expelled."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from kafka import KafkaConsumer, TopicPartition

import localkafka
from tests.conftest import OwnBroker, Services, seqs
from tests.network import blackholed

#: Longer than the session timeout the tests use (6 s): the group expels the consumer.
CUT_S = 20


def _handled(consumer: object) -> list[int]:
    lines = consumer.events("test.handled")  # type: ignore[attr-defined]
    return [json.loads(line["value"])["seq"] for line in lines]


def _committed(bootstrap: str, group: str, topic: str) -> int:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        return sum(reader.committed(TopicPartition(topic, p)) or 0 for p in range(2))
    finally:
        reader.close()


@pytest.mark.faults
@pytest.mark.localkafka
@pytest.mark.parametrize("ordering", ["partition", "key"])
def test_a_consumer_cut_off_past_its_session_loses_nothing(
    services: Services, own_broker: OwnBroker, ordering: str
) -> None:
    bootstrap = own_broker.broker.plaintext
    port = int(bootstrap.rsplit(":", 1)[1])
    topic, group = "cut", "g-cut"
    localkafka.create_topic(own_broker.broker, topic, partitions=2)
    common = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC": topic}
    producer = services.start("producer", **common, PRODUCER_RATE="50", LOG_MESSAGE_EVERY="1")
    consumer = services.start(
        "consumer",
        **common,
        KAFKA_GROUP_ID=group,
        CONSUMER_HANDLER="tests.handlers:handle_all",
        CONSUMER_ORDERING=ordering,
    )
    services.wait_until(lambda: len(_handled(consumer)) >= 200, what="200 handled")

    # The group's offsets only grow between this read and the cut, and nothing handled
    # during the cut can be committed.
    committed_before = _committed(bootstrap, group, topic)
    with blackholed(port):
        threading.Event().wait(CUT_S)  # the fault's length, not a wait for an event
        # Records already fetched are still handled during the cut, until the expulsion;
        # none is handled as an expelled member, so this counts all that may come again.
        handled_at_cut = len(_handled(consumer))
    services.wait_until(
        lambda: consumer.events("partitions.assigned")[1:],
        timeout=60,
        what="the consumer expelled and back",
    )
    # Everything the producer had acknowledged by now, and a little more, arrives.
    services.wait_until(lambda: len(seqs(producer, "message.sent")) >= handled_at_cut + 500,
                        timeout=60, what="500 more sent")  # fmt: skip
    assert producer.stop() == 0
    sent = set(seqs(producer, "message.sent"))
    services.wait_until(lambda: sent <= set(_handled(consumer)), timeout=60, what="all handled")
    assert consumer.stop() == 0

    handled = Counter(_handled(consumer))
    twice = sorted(seq for seq, times in handled.items() if times > 1)
    assert sent - set(handled) == set(), "lost"
    uncommitted_at_cut = handled_at_cut - committed_before
    print(f"handled at the cut {handled_at_cut}, uncommitted {uncommitted_at_cut}, twice {twice}")
    assert len(twice) <= uncommitted_at_cut, twice
